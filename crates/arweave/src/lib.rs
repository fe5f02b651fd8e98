//! Arweave for Mintframe: wallets, format-2 transactions with their chunk proofs, ANS-104 data
//! items and bundles, path manifests, and the gateway's HTTP API. Everything that names content
//! (an id, a data root) is computed here before anything is sent, as the IPFS side computes CIDs.

pub mod ans104;
pub mod deep_hash;
pub mod gateway;
pub mod manifest;
pub mod merkle;
pub mod tx;
pub mod wallet;

pub use gateway::Gateway;
pub use wallet::Wallet;

/// One winston is 10⁻¹² AR.
pub const WINSTON_PER_AR: u128 = 1_000_000_000_000;

/// `12.345678 AR` from winston, for messages.
pub fn ar(winston: u128) -> String {
    let whole = winston / WINSTON_PER_AR;
    let frac = winston % WINSTON_PER_AR;
    let frac = format!("{frac:012}");
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{whole} AR")
    } else {
        format!("{whole}.{frac} AR")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArweaveError {
    #[error("the Arweave wallet cannot be used: {0}")]
    Wallet(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the Arweave gateway at {url} cannot be reached ({reason}); is it running? (`scripts/arlocal up` starts the local one)"
    )]
    Unreachable { url: String, reason: String },
    #[error("the Arweave gateway at {url} gave no answer to {endpoint} within {secs} s")]
    Timeout {
        url: String,
        endpoint: String,
        secs: u64,
    },
    #[error("the Arweave gateway at {url} answered {endpoint} with an error: {reason}")]
    Gateway {
        url: String,
        endpoint: String,
        reason: String,
    },
    #[error("the wallet {address} holds {} and this upload costs {}: add at least {} before publishing", crate::ar(*.balance), crate::ar(*.price), crate::ar(.price.saturating_sub(*.balance)))]
    Insufficient {
        address: String,
        balance: u128,
        price: u128,
    },
    #[error("{what} is {size} bytes, over the {limit}-byte limit of {gateway}")]
    TooLarge {
        what: String,
        size: u64,
        limit: u64,
        gateway: String,
    },
}

/// base64url without padding, Arweave's encoding for every binary field.
pub mod b64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    pub fn encode(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Accepts padded input too (some wallets write it).
    pub fn decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
        URL_SAFE_NO_PAD.decode(text.trim_end_matches('='))
    }

    /// A 32-byte id (transaction, data item, anchor) from its 43-character text.
    pub fn id(text: &str) -> Option<[u8; 32]> {
        decode(text).ok()?.try_into().ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn winston_read_as_ar_keeps_every_digit_that_matters() {
        assert_eq!(super::ar(0), "0 AR");
        assert_eq!(super::ar(1_500_000_000_000), "1.5 AR");
        assert_eq!(super::ar(65_595_508_000), "0.065595508 AR");
    }
}
