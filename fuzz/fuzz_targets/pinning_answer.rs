//! Pinning Service API answers: a status code (the first two bytes) and a JSON body.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let code = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let Ok(text) = std::str::from_utf8(&data[2..]) else {
        return;
    };
    let svc = mintframe_publish::pinning::Service {
        name: "svc".into(),
        endpoint: "http://127.0.0.1:9/psa".into(),
    };
    let _ = mintframe_publish::pinning::parse_answer(&svc, code, text, Some("r1"));
});
