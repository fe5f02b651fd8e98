//! The node's answer to `add` (Kubo RPC and js-ipfs): JSON lines, progress, errors.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(api) = mintframe_publish::ApiAddr::parse("http://127.0.0.1:5001") else {
        return;
    };
    if let Ok(added) = mintframe_publish::client::parse_add(&api, text) {
        assert!(!added.is_empty());
    }
});
