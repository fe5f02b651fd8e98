//! The HTTP API every Arweave gateway and node serves (arweave.net, a local `arlocal`): prices,
//! balances, anchors, transaction headers, chunks, status, and data by id or manifest path.

use std::io::Read;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::ArweaveError;
use crate::tx::Transaction;

#[derive(Debug, Clone)]
pub struct Gateway {
    url: String,
    agent: ureq::Agent,
    timeout: Duration,
}

/// Where a transaction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Not known to the gateway.
    Unknown,
    /// Accepted, not yet in a block.
    Pending,
    Confirmed {
        height: u64,
        confirmations: u64,
    },
}

impl Gateway {
    /// A gateway at `url` (`http://127.0.0.1:1984`); every request gives up after `timeout`.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, ArweaveError> {
        let url = url.trim().trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ArweaveError::Invalid(format!(
                "{url:?} is not a gateway URL (http://host:port or https://host)"
            )));
        }
        // The answer must begin within `timeout`; a body (a 256 MiB clip read back) may take
        // longer to stream, so its reading is not bounded by the same figure.
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(timeout))
            .timeout_send_request(Some(timeout))
            .timeout_send_body(Some(timeout))
            .timeout_recv_response(Some(timeout))
            // A body (a 256 MiB clip read back) may take longer than an answer's start, but a
            // gateway that trickles forever must not hold the publish.
            .timeout_recv_body(Some(timeout * 10))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Self {
            url,
            agent,
            timeout,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn transport(&self, endpoint: &str, e: ureq::Error) -> ArweaveError {
        let timed_out = match &e {
            ureq::Error::Timeout(_) => true,
            ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::TimedOut,
            _ => false,
        };
        if timed_out {
            return ArweaveError::Timeout {
                url: self.url.clone(),
                endpoint: endpoint.to_owned(),
                secs: self.timeout.as_secs(),
            };
        }
        match e {
            ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
                ArweaveError::Unreachable {
                    url: self.url.clone(),
                    reason: e.to_string(),
                }
            }
            // A path we could not put in a URI, an answer over its limit, a broken answer:
            // the gateway is there, this exchange failed.
            other => self.error(endpoint, other.to_string()),
        }
    }

    fn error(&self, endpoint: &str, reason: impl Into<String>) -> ArweaveError {
        ArweaveError::Gateway {
            url: self.url.clone(),
            endpoint: endpoint.to_owned(),
            reason: reason.into(),
        }
    }

    fn get(&self, path: &str) -> Result<(u16, String), ArweaveError> {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.url))
            .call()
            .map_err(|e| self.transport(path, e))?;
        let code = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(|e| self.transport(path, e))?;
        Ok((code, text))
    }

    fn get_ok(&self, path: &str) -> Result<String, ArweaveError> {
        match self.get(path)? {
            (200, text) => Ok(text),
            (code, text) => Err(self.error(path, format!("HTTP {code}: {}", short(&text)))),
        }
    }

    fn number(&self, path: &str) -> Result<u128, ArweaveError> {
        let text = self.get_ok(path)?;
        text.trim().parse().map_err(|_| {
            self.error(
                path,
                format!("{:?} is not an amount of winston", text.trim()),
            )
        })
    }

    /// The network's name (`arlocal.N.1` for a local gateway) and height.
    pub fn info(&self) -> Result<(String, u64), ArweaveError> {
        let text = self.get_ok("/info")?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| self.error("/info", format!("not JSON ({e})")))?;
        Ok((
            v["network"].as_str().unwrap_or_default().to_owned(),
            v["height"].as_u64().unwrap_or_default(),
        ))
    }

    /// Whether this is a local test gateway (arlocal), where no miner runs and Mintframe mines
    /// the blocks itself.
    pub fn is_local(&self) -> Result<bool, ArweaveError> {
        Ok(self.info()?.0.starts_with("arlocal"))
    }

    /// What storing `bytes` costs, in winston.
    pub fn price(&self, bytes: u64) -> Result<u128, ArweaveError> {
        self.number(&format!("/price/{bytes}"))
    }

    pub fn balance(&self, address: &str) -> Result<u128, ArweaveError> {
        self.number(&format!("/wallet/{address}/balance"))
    }

    /// A recent anchor for a transaction's `last_tx`.
    pub fn anchor(&self) -> Result<String, ArweaveError> {
        let text = self.get_ok("/tx_anchor")?;
        let text = text.trim();
        if crate::b64::decode(text).is_err() {
            return Err(self.error("/tx_anchor", format!("{text:?} is not an anchor")));
        }
        Ok(text.to_owned())
    }

    /// Whether the gateway holds `id`, mined or pending (a node answers 202 while it waits).
    pub fn knows(&self, id: &str) -> Result<bool, ArweaveError> {
        let path = format!("/tx/{id}");
        match self.get(&path)? {
            (200 | 202, _) => Ok(true),
            (404 | 410, _) => Ok(false),
            (code, text) => Err(self.error(&path, format!("HTTP {code}: {}", short(&text)))),
        }
    }

    pub fn status(&self, id: &str) -> Result<TxStatus, ArweaveError> {
        let path = format!("/tx/{id}/status");
        match self.get(&path)? {
            (200, text) if text.trim() == "Pending" => Ok(TxStatus::Pending),
            (200, text) => {
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| self.error(&path, format!("not JSON ({e})")))?;
                Ok(TxStatus::Confirmed {
                    height: v["block_height"].as_u64().unwrap_or_default(),
                    confirmations: v["number_of_confirmations"].as_u64().unwrap_or_default(),
                })
            }
            (202, _) => Ok(TxStatus::Pending),
            (404, _) => Ok(TxStatus::Unknown),
            (code, text) => Err(self.error(&path, format!("HTTP {code}: {}", short(&text)))),
        }
    }

    fn post_json(&self, path: &str, body: &[u8]) -> Result<(), ArweaveError> {
        let mut resp = self
            .agent
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .send(body)
            .map_err(|e| self.transport(path, e))?;
        let code = resp.status().as_u16();
        if (200..300).contains(&code) {
            return Ok(());
        }
        let text = resp
            .body_mut()
            .with_config()
            .limit(1 << 16)
            .read_to_string()
            .unwrap_or_else(|e| format!("(its answer could not be read: {e})"));
        Err(self.error(path, format!("HTTP {code}: {}", short(&text))))
    }

    /// Sends a signed header (its data empty: the chunks follow).
    pub fn post_transaction(&self, tx: &Transaction) -> Result<(), ArweaveError> {
        let body = serde_json::to_vec(tx).map_err(|e| self.error("/tx", e.to_string()))?;
        self.post_json("/tx", &body)
    }

    /// Sends one chunk of a transaction's data with its proof.
    pub fn post_chunk(
        &self,
        data_root: &str,
        data_size: u64,
        chunk: &crate::merkle::Chunk,
        bytes: &[u8],
    ) -> Result<(), ArweaveError> {
        let body = serde_json::json!({
            "data_root": data_root,
            "data_size": data_size.to_string(),
            "data_path": crate::b64::encode(&chunk.proof),
            "offset": chunk.offset().to_string(),
            "chunk": crate::b64::encode(bytes),
        });
        let body = serde_json::to_vec(&body).map_err(|e| self.error("/chunk", e.to_string()))?;
        self.post_json("/chunk", &body)
    }

    /// Streams `/{path}` (an id, or a manifest id and a path in it) and returns its SHA-256 and
    /// size; `None` when the gateway has nothing there.
    pub fn data_sha256(
        &self,
        path: &str,
        max: u64,
    ) -> Result<Option<([u8; 32], u64)>, ArweaveError> {
        let endpoint = format!("/{path}");
        let mut resp = self
            .agent
            .get(format!("{}{endpoint}", self.url))
            .call()
            .map_err(|e| self.transport(&endpoint, e))?;
        match resp.status().as_u16() {
            200 => {}
            404 | 410 => return Ok(None),
            code => return Err(self.error(&endpoint, format!("HTTP {code}"))),
        }
        let mut reader = resp
            .body_mut()
            .with_config()
            .limit(max.saturating_add(1))
            .reader();
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        loop {
            let k = reader
                .read(&mut buf)
                .map_err(|e| self.error(&endpoint, format!("the body broke off: {e}")))?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k as u64;
            if n > max {
                return Err(self.error(
                    &endpoint,
                    format!("it sends more than the {max} bytes expected"),
                ));
            }
        }
        Ok(Some((h.finalize().into(), n)))
    }

    /// Which of `ids` the gateway's GraphQL index holds, each with its owner's address.
    pub fn indexed(&self, ids: &[String]) -> Result<Vec<(String, String)>, ArweaveError> {
        let endpoint = "/graphql";
        let mut found = Vec::new();
        for batch in ids.chunks(100) {
            let query = format!(
                "query {{ transactions(ids: {}, first: 100) {{ edges {{ node {{ id owner {{ address }} }} }} }} }}",
                serde_json::to_string(batch).map_err(|e| self.error(endpoint, e.to_string()))?
            );
            let body = serde_json::to_vec(&serde_json::json!({ "query": query }))
                .map_err(|e| self.error(endpoint, e.to_string()))?;
            let mut resp = self
                .agent
                .post(format!("{}{endpoint}", self.url))
                .header("content-type", "application/json")
                .send(&body[..])
                .map_err(|e| self.transport(endpoint, e))?;
            let code = resp.status().as_u16();
            let text = resp
                .body_mut()
                .with_config()
                .limit(16 << 20)
                .read_to_string()
                .map_err(|e| self.transport(endpoint, e))?;
            if code != 200 {
                return Err(self.error(endpoint, format!("HTTP {code}: {}", short(&text))));
            }
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| self.error(endpoint, format!("not JSON ({e})")))?;
            let edges = v["data"]["transactions"]["edges"]
                .as_array()
                .ok_or_else(|| {
                    self.error(endpoint, format!("no transactions in {}", short(&text)))
                })?;
            for e in edges {
                if let Some(id) = e["node"]["id"].as_str() {
                    let owner = e["node"]["owner"]["address"].as_str().unwrap_or_default();
                    found.push((id.to_owned(), owner.to_owned()));
                }
            }
        }
        Ok(found)
    }

    /// A local gateway's faucet: gives `address` `winston`.
    pub fn mint(&self, address: &str, winston: u128) -> Result<u128, ArweaveError> {
        self.get_ok(&format!("/mint/{address}/{winston}"))?;
        self.balance(address)
    }

    /// Has a local gateway mine a block (what a real network's miners do).
    pub fn mine(&self) -> Result<(), ArweaveError> {
        self.get_ok("/mine").map(|_| ())
    }
}

/// A gateway's text cut to a length an error message can carry.
fn short(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_owned(),
    }
}
