//! Beyond one machine: asking an IPFS Pinning Service API provider to keep the collection's
//! roots (<https://ipfs.github.io/pinning-services-api-spec/>). `POST /pins` with the CID, a name
//! and our node's addresses as `origins`; then `GET /pins/{requestid}` until the status is
//! `pinned` or `failed` (`queued` and `pinning` on the way). The Bearer token comes from the
//! caller (the OS keyring), never from a file.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// A provider: a name the user chose and the API's base URL (e.g. `https://api.pinata.cloud/psa`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub name: String,
    pub endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinStatus {
    pub requestid: String,
    /// `queued`, `pinning`, `pinned` or `failed`.
    pub status: String,
    pub cid: String,
    /// What the provider adds in the spec's `info` object (Filecoin deal states, a queue
    /// position), as it sent it; empty when it sends none.
    #[serde(default)]
    pub info: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PinningError {
    #[error(
        "pinning service {service}: the token was refused (HTTP {code}); store a new one with `mintframe publish service add {service} <endpoint> --token-stdin`"
    )]
    Unauthorized { service: String, code: u16 },
    #[error("pinning service {service}: pin request {requestid} does not exist (HTTP 404)")]
    NotFound { service: String, requestid: String },
    #[error("pinning service {service}: could not pin {cid}: {reason}")]
    Failed {
        service: String,
        cid: String,
        reason: String,
    },
    #[error("pinning service {service} at {endpoint}: {reason}")]
    Http {
        service: String,
        endpoint: String,
        reason: String,
    },
    #[error("pinning service {0}: the endpoint must be an http(s) URL")]
    BadEndpoint(String),
}

#[derive(Deserialize)]
struct Wire {
    requestid: String,
    status: String,
    pin: WirePin,
    #[serde(default)]
    info: std::collections::BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct WirePin {
    cid: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn base(svc: &Service) -> Result<String, PinningError> {
    let e = svc.endpoint.trim().trim_end_matches('/');
    if !(e.starts_with("https://") || e.starts_with("http://")) {
        return Err(PinningError::BadEndpoint(svc.name.clone()));
    }
    Ok(e.to_owned())
}

fn http_err(svc: &Service, reason: impl Into<String>) -> PinningError {
    PinningError::Http {
        service: svc.name.clone(),
        endpoint: svc.endpoint.clone(),
        reason: reason.into(),
    }
}

fn read(
    svc: &Service,
    mut resp: ureq::http::Response<ureq::Body>,
    requestid: Option<&str>,
) -> Result<PinStatus, PinningError> {
    let code = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .unwrap_or_default();
    parse_answer(svc, code, &text, requestid)
}

/// What a Pinning Service answered (status code and body), as a pin status or the error it
/// means. Public for the fuzz target.
pub fn parse_answer(
    svc: &Service,
    code: u16,
    text: &str,
    requestid: Option<&str>,
) -> Result<PinStatus, PinningError> {
    match code {
        200 | 202 => {
            let w: Wire = serde_json::from_str(text).map_err(|e| {
                http_err(
                    svc,
                    format!("an answer that is not a PinStatus ({e}): {text}"),
                )
            })?;
            Ok(PinStatus {
                requestid: w.requestid,
                status: w.status,
                cid: w.pin.cid,
                info: w.info,
            })
        }
        401 | 403 => Err(PinningError::Unauthorized {
            service: svc.name.clone(),
            code,
        }),
        404 if requestid.is_some() => Err(PinningError::NotFound {
            service: svc.name.clone(),
            requestid: requestid.unwrap_or_default().to_owned(),
        }),
        _ => Err(http_err(svc, format!("HTTP {code}: {}", text.trim()))),
    }
}

/// Asks the service to pin `cid`.
pub fn add_pin(
    svc: &Service,
    token: &str,
    cid: &str,
    name: &str,
    origins: &[String],
) -> Result<PinStatus, PinningError> {
    let url = format!("{}/pins", base(svc)?);
    let body = serde_json::json!({
        "cid": cid,
        "name": name,
        "origins": origins,
        "meta": {"app": "mintframe"},
    });
    let resp = agent()
        .post(&url)
        .header("Authorization", format!("Bearer {token}"))
        .send_json(&body)
        .map_err(|e| http_err(svc, e.to_string()))?;
    read(svc, resp, None)
}

/// The status of an earlier request.
pub fn get_pin(svc: &Service, token: &str, requestid: &str) -> Result<PinStatus, PinningError> {
    let url = format!("{}/pins/{requestid}", base(svc)?);
    let resp = agent()
        .get(&url)
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .map_err(|e| http_err(svc, e.to_string()))?;
    read(svc, resp, Some(requestid))
}

/// Pins `cid` and polls (1 s, growing to 10 s) until it is `pinned`, `failed`, or `wait` has
/// passed; returns the last status. `failed` is an error; still `queued`/`pinning` at the
/// deadline is not (the service keeps working; `mintframe publish list` shows it).
pub fn pin_and_wait(
    svc: &Service,
    token: &str,
    cid: &str,
    name: &str,
    origins: &[String],
    wait: Duration,
    on_status: &dyn Fn(&PinStatus),
) -> Result<PinStatus, PinningError> {
    let started = Instant::now();
    let mut st = add_pin(svc, token, cid, name, origins)?;
    let mut pause = Duration::from_secs(1);
    loop {
        on_status(&st);
        match st.status.as_str() {
            "pinned" => return Ok(st),
            "failed" => {
                return Err(PinningError::Failed {
                    service: svc.name.clone(),
                    cid: cid.to_owned(),
                    reason: "the service reported `failed`".into(),
                });
            }
            _ if started.elapsed() + pause > wait => return Ok(st),
            _ => {}
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(10));
        st = get_pin(svc, token, &st.requestid)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider that makes Filecoin deals reports them in the spec's `info` object; it is kept
    /// as sent so the studio can show it beside the status.
    #[test]
    fn a_pins_info_such_as_its_filecoin_deals_is_kept_as_the_provider_sent_it() {
        let svc = Service {
            name: "lighthouse".into(),
            endpoint: "https://api.example/psa".into(),
        };
        let text = r#"{"requestid":"r1","status":"pinned","created":"2026-01-01T00:00:00Z","pin":{"cid":"bafy"},"delegates":[],"info":{"deal_status":"active","deals":[{"miner":"f01234","dealId":42}]}}"#;
        let st = parse_answer(&svc, 200, text, None).expect("a PinStatus");
        assert_eq!(st.info["deal_status"], "active");
        assert_eq!(st.info["deals"][0]["dealId"], 42);
        let plain = r#"{"requestid":"r2","status":"queued","created":"2026-01-01T00:00:00Z","pin":{"cid":"bafy"},"delegates":[]}"#;
        assert!(
            parse_answer(&svc, 202, plain, None)
                .expect("a PinStatus")
                .info
                .is_empty()
        );
    }
}
