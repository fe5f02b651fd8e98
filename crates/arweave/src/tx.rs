//! Format-2 transactions: the header a gateway's `POST /tx` takes, signed over the deep-hash of
//! its fields. The data travels apart, chunk by chunk, under the header's `data_root`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::deep_hash::{Chunk, deep_hash};
use crate::{ArweaveError, Wallet, b64};

/// A tag, as bytes (the wire form base64url-encodes both).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub name: String,
    pub value: String,
}

impl Tag {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A tag on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireTag {
    pub name: String,
    pub value: String,
}

/// A transaction header exactly as `POST /tx` takes it and `GET /tx/{id}` gives it back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub format: u8,
    pub id: String,
    pub last_tx: String,
    pub owner: String,
    pub tags: Vec<WireTag>,
    pub target: String,
    pub quantity: String,
    /// Empty: the data goes as chunks (or, small, in the body of the same POST).
    pub data: String,
    pub data_size: String,
    pub data_root: String,
    pub reward: String,
    pub signature: String,
}

/// What a transaction is made of before it is signed.
#[derive(Debug, Clone)]
pub struct Unsigned {
    /// A recent block hash or the wallet's last transaction (`GET /tx_anchor`).
    pub last_tx: String,
    pub tags: Vec<Tag>,
    pub data_size: u64,
    pub data_root: [u8; 32],
    /// The fee in winston (`GET /price/{bytes}`).
    pub reward: u128,
}

fn decoded(field: &str, text: &str) -> Result<Vec<u8>, ArweaveError> {
    b64::decode(text)
        .map_err(|_| ArweaveError::Invalid(format!("the transaction's {field} is not base64url")))
}

/// The bytes a format-2 transaction's signature covers.
pub fn signature_data(tx: &Transaction) -> Result<[u8; 48], ArweaveError> {
    let owner = decoded("owner", &tx.owner)?;
    let target = decoded("target", &tx.target)?;
    let last_tx = decoded("last_tx", &tx.last_tx)?;
    let data_root = decoded("data_root", &tx.data_root)?;
    let mut tags = Vec::new();
    for t in &tx.tags {
        tags.push((
            decoded("tag name", &t.name)?,
            decoded("tag value", &t.value)?,
        ));
    }
    let format = tx.format.to_string();
    Ok(deep_hash(&Chunk::List(vec![
        Chunk::Blob(format.as_bytes()),
        Chunk::Blob(&owner),
        Chunk::Blob(&target),
        Chunk::Blob(tx.quantity.as_bytes()),
        Chunk::Blob(tx.reward.as_bytes()),
        Chunk::Blob(&last_tx),
        Chunk::List(
            tags.iter()
                .map(|(n, v)| Chunk::List(vec![Chunk::Blob(n), Chunk::Blob(v)]))
                .collect(),
        ),
        Chunk::Blob(tx.data_size.as_bytes()),
        Chunk::Blob(&data_root),
    ])))
}

/// Signs a data-carrying transaction (no transfer: target empty, quantity 0).
pub fn sign(wallet: &Wallet, unsigned: &Unsigned) -> Result<Transaction, ArweaveError> {
    let mut tx = Transaction {
        format: 2,
        id: String::new(),
        last_tx: unsigned.last_tx.clone(),
        owner: b64::encode(wallet.owner()),
        tags: unsigned
            .tags
            .iter()
            .map(|t| WireTag {
                name: b64::encode(t.name.as_bytes()),
                value: b64::encode(t.value.as_bytes()),
            })
            .collect(),
        target: String::new(),
        quantity: "0".into(),
        data: String::new(),
        data_size: unsigned.data_size.to_string(),
        data_root: if unsigned.data_size == 0 {
            String::new()
        } else {
            b64::encode(&unsigned.data_root)
        },
        reward: unsigned.reward.to_string(),
        signature: String::new(),
    };
    let signature = wallet.sign(&signature_data(&tx)?);
    tx.id = b64::encode(&Sha256::digest(&signature));
    tx.signature = b64::encode(&signature);
    Ok(tx)
}

/// Whether the signature is the owner's over these fields and the id is its hash.
pub fn verify(tx: &Transaction) -> Result<bool, ArweaveError> {
    let signature = decoded("signature", &tx.signature)?;
    let owner = decoded("owner", &tx.owner)?;
    Ok(b64::encode(&Sha256::digest(&signature)) == tx.id
        && crate::wallet::verify(&owner, &signature_data(tx)?, &signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The payload arweave@1.15.7's `getSignatureData` gives for these fields.
    #[test]
    fn the_signature_payload_equals_arweave_js() {
        let e = |s: &str| b64::encode(s.as_bytes());
        let tx = Transaction {
            format: 2,
            id: String::new(),
            last_tx: b64::encode(&[2u8; 32]),
            owner: b64::encode(&[1u8; 512]),
            tags: vec![
                WireTag {
                    name: e("Content-Type"),
                    value: e("text/plain"),
                },
                WireTag {
                    name: e("App-Name"),
                    value: e("test"),
                },
            ],
            target: String::new(),
            quantity: "0".into(),
            data: String::new(),
            data_size: "11".into(),
            data_root: "J3gOIuOz81boq6eHMs4yF84fMSh0yvrKFqOcnXQML90".into(),
            reward: "12345".into(),
            signature: String::new(),
        };
        let hex: String = signature_data(&tx)
            .expect("in a test")
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect();
        assert_eq!(
            hex,
            "86ecdd3f354a22aafac41395292d71c61d43f84026e4802be78e8688a0e54a26c73903d3f794085617eacdb8dea70552"
        );
        assert_eq!(
            crate::wallet::address_of(&[1u8; 512]),
            "bK841TeYTiYVJ7jK71-ZD7kUFaHbkXGYghp57SiZeXM"
        );
    }
}
