//! ANS-104 data items and bundles: each file of a collection signed on its own (its id is the
//! SHA-256 of its signature, so it is known before upload), packed into one bundle that a single
//! transaction carries. Gateways unpack the bundle and serve each item under its own id.
//!
//! Item layout: signature type (u16 LE, 1 = Arweave), signature (512), owner (512), target flag
//! (+32), anchor flag (+32), tag count (u64 LE), tag bytes length (u64 LE), tags (Avro), data.

use sha2::{Digest, Sha256};

use crate::deep_hash::{Chunk, deep_hash};
use crate::tx::Tag;
use crate::wallet::OWNER_LEN;
use crate::{ArweaveError, Wallet};

const SIGNATURE_TYPE_ARWEAVE: u16 = 1;
pub const MAX_TAGS: usize = 128;
pub const MAX_TAG_NAME: usize = 1024;
pub const MAX_TAG_VALUE: usize = 3072;
/// arbundles refuses an item whose encoded tags pass this.
pub const MAX_TAG_BYTES: usize = 4096;

fn zigzag(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn read_zigzag(bytes: &[u8], at: &mut usize) -> Option<i64> {
    let mut z = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        z |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    None
}

/// Refuses tags a bundler or gateway would refuse.
pub fn check_tags(tags: &[Tag]) -> Result<(), ArweaveError> {
    if tags.len() > MAX_TAGS {
        return Err(ArweaveError::Invalid(format!(
            "{} tags; a data item holds at most {MAX_TAGS}",
            tags.len()
        )));
    }
    for t in tags {
        if t.name.is_empty() || t.value.is_empty() {
            return Err(ArweaveError::Invalid(format!(
                "the tag {:?}={:?} has an empty name or value",
                t.name, t.value
            )));
        }
        if t.name.len() > MAX_TAG_NAME || t.value.len() > MAX_TAG_VALUE {
            return Err(ArweaveError::Invalid(format!(
                "the tag {:?} is over {MAX_TAG_NAME} bytes of name or {MAX_TAG_VALUE} of value",
                t.name
            )));
        }
    }
    if encode_tags(tags).len() > MAX_TAG_BYTES {
        return Err(ArweaveError::Invalid(format!(
            "the tags take over {MAX_TAG_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The tags as Avro encodes an array of `{name: bytes, value: bytes}`: one block, then 0.
pub fn encode_tags(tags: &[Tag]) -> Vec<u8> {
    let mut out = Vec::new();
    if tags.is_empty() {
        return out;
    }
    zigzag(&mut out, tags.len() as i64);
    for t in tags {
        for s in [&t.name, &t.value] {
            zigzag(&mut out, s.len() as i64);
            out.extend_from_slice(s.as_bytes());
        }
    }
    out.push(0);
    out
}

pub fn decode_tags(bytes: &[u8]) -> Option<Vec<Tag>> {
    let mut tags = Vec::new();
    if bytes.is_empty() {
        return Some(tags);
    }
    let mut at = 0;
    loop {
        let mut count = read_zigzag(bytes, &mut at)?;
        if count == 0 {
            break;
        }
        if count < 0 {
            // A negative count is followed by the block's size in bytes.
            read_zigzag(bytes, &mut at)?;
            count = count.checked_neg()?;
        }
        for _ in 0..count {
            let mut two = Vec::new();
            for _ in 0..2 {
                let len = usize::try_from(read_zigzag(bytes, &mut at)?).ok()?;
                let s = bytes.get(at..at.checked_add(len)?)?;
                at += len;
                two.push(String::from_utf8(s.to_vec()).ok()?);
            }
            let value = two.pop()?;
            let name = two.pop()?;
            tags.push(Tag { name, value });
        }
    }
    (at == bytes.len()).then_some(tags)
}

/// A signed data item without its data: the bytes that precede the data, and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemHeader {
    pub id: [u8; 32],
    pub header: Vec<u8>,
    pub data_len: u64,
}

impl ItemHeader {
    pub fn len(&self) -> u64 {
        self.header.len() as u64 + self.data_len
    }
    pub fn is_empty(&self) -> bool {
        false
    }
    pub fn id_text(&self) -> String {
        crate::b64::encode(&self.id)
    }
}

fn signature_data(owner: &[u8], tag_bytes: &[u8], data: Chunk<'_>) -> [u8; 48] {
    deep_hash(&Chunk::List(vec![
        Chunk::Blob(b"dataitem"),
        Chunk::Blob(b"1"),
        Chunk::Blob(SIGNATURE_TYPE_ARWEAVE.to_string().as_bytes()),
        Chunk::Blob(owner),
        Chunk::Blob(b""),
        Chunk::Blob(b""),
        Chunk::Blob(tag_bytes),
        data,
    ]))
}

/// Signs an item holding `data_len` bytes whose SHA-384 is `data_sha384` (no target, no anchor:
/// nothing in it depends on the network's state, so its id is final offline).
pub fn sign(
    wallet: &Wallet,
    tags: &[Tag],
    data_len: u64,
    data_sha384: [u8; 48],
) -> Result<ItemHeader, ArweaveError> {
    check_tags(tags)?;
    let tag_bytes = encode_tags(tags);
    let message = signature_data(
        wallet.owner(),
        &tag_bytes,
        Chunk::Hashed {
            len: data_len,
            sha384: data_sha384,
        },
    );
    let signature = wallet.sign(&message);
    let mut header = Vec::with_capacity(2 + 1024 + 2 + 16 + tag_bytes.len());
    header.extend_from_slice(&SIGNATURE_TYPE_ARWEAVE.to_le_bytes());
    header.extend_from_slice(&signature);
    header.extend_from_slice(wallet.owner());
    header.push(0);
    header.push(0);
    header.extend_from_slice(&(tags.len() as u64).to_le_bytes());
    header.extend_from_slice(&(tag_bytes.len() as u64).to_le_bytes());
    header.extend_from_slice(&tag_bytes);
    Ok(ItemHeader {
        id: Sha256::digest(&signature).into(),
        header,
        data_len,
    })
}

/// A data item read from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub id: [u8; 32],
    pub owner: Vec<u8>,
    pub tags: Vec<Tag>,
    pub data_start: usize,
    pub valid: bool,
}

/// Reads (and checks the signature of) a whole data item.
pub fn parse(item: &[u8]) -> Result<Parsed, ArweaveError> {
    let bad = |why: &str| ArweaveError::Invalid(format!("not an ANS-104 data item: {why}"));
    let sig_type = u16::from_le_bytes(
        item.get(..2)
            .ok_or_else(|| bad("too short"))?
            .try_into()
            .map_err(|_| bad("too short"))?,
    );
    if sig_type != SIGNATURE_TYPE_ARWEAVE {
        return Err(bad(&format!(
            "signature type {sig_type}, not Arweave's (1)"
        )));
    }
    let signature = item.get(2..2 + OWNER_LEN).ok_or_else(|| bad("too short"))?;
    let owner = item
        .get(2 + OWNER_LEN..2 + 2 * OWNER_LEN)
        .ok_or_else(|| bad("too short"))?;
    let mut at = 2 + 2 * OWNER_LEN;
    let mut optional = Vec::new();
    for what in ["target", "anchor"] {
        match item.get(at) {
            Some(0) => {
                at += 1;
                optional.push(&item[at..at]);
            }
            Some(1) => {
                let v = item.get(at + 1..at + 33).ok_or_else(|| bad("too short"))?;
                optional.push(v);
                at += 33;
            }
            _ => return Err(bad(&format!("its {what} flag is neither 0 nor 1"))),
        }
    }
    let word = |at: usize| -> Result<u64, ArweaveError> {
        Ok(u64::from_le_bytes(
            item.get(at..at + 8)
                .ok_or_else(|| bad("too short"))?
                .try_into()
                .map_err(|_| bad("too short"))?,
        ))
    };
    let count = word(at)?;
    let tag_len = usize::try_from(word(at + 8)?).map_err(|_| bad("tag bytes too long"))?;
    at += 16;
    let tag_bytes = item
        .get(
            at..at
                .checked_add(tag_len)
                .ok_or_else(|| bad("tag bytes too long"))?,
        )
        .ok_or_else(|| bad("too short"))?;
    let tags = decode_tags(tag_bytes).ok_or_else(|| bad("its tags are not Avro"))?;
    if tags.len() as u64 != count {
        return Err(bad("its tag count disagrees with its tags"));
    }
    at += tag_len;
    let data = &item[at..];
    let message = deep_hash(&Chunk::List(vec![
        Chunk::Blob(b"dataitem"),
        Chunk::Blob(b"1"),
        Chunk::Blob(b"1"),
        Chunk::Blob(owner),
        Chunk::Blob(optional[0]),
        Chunk::Blob(optional[1]),
        Chunk::Blob(tag_bytes),
        Chunk::Blob(data),
    ]));
    Ok(Parsed {
        id: Sha256::digest(signature).into(),
        owner: owner.to_vec(),
        tags,
        data_start: at,
        valid: crate::wallet::verify(owner, &message, signature),
    })
}

/// The bundle's head: how many items, then each one's size and id (32-byte little-endian
/// numbers), before the items themselves in the same order.
pub fn bundle_head(items: &[ItemHeader]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + 64 * items.len());
    let word = |out: &mut Vec<u8>, n: u64| {
        let mut w = [0u8; 32];
        w[..8].copy_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&w);
    };
    word(&mut out, items.len() as u64);
    for i in items {
        word(&mut out, i.len());
        out.extend_from_slice(&i.id);
    }
    out
}

/// The tags a transaction carrying a bundle must have.
pub fn bundle_tags() -> Vec<Tag> {
    vec![
        Tag::new("Bundle-Format", "binary"),
        Tag::new("Bundle-Version", "2.0.0"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avro_tags_read_back_as_written_with_zigzag_lengths() {
        let tags = vec![
            Tag::new("Content-Type", "image/png"),
            Tag::new("N", "v".repeat(200)),
        ];
        let bytes = encode_tags(&tags);
        // 2 entries → zigzag 4; "Content-Type" (12) → 24.
        assert_eq!(&bytes[..2], &[4, 24]);
        assert_eq!(*bytes.last().expect("in a test"), 0);
        assert_eq!(decode_tags(&bytes).expect("in a test"), tags);
        assert_eq!(encode_tags(&[]), Vec::<u8>::new());
        // arbundles@0.11.2's bytes for the same two tags.
        let two = [Tag::new("Content-Type", "text/plain"), Tag::new("App", "x")];
        let hex: String = encode_tags(&two)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect();
        assert_eq!(
            hex,
            "0418436f6e74656e742d5479706514746578742f706c61696e06417070027800"
        );
        assert!(decode_tags(&bytes[..bytes.len() - 1]).is_none());
    }

    #[test]
    fn tags_a_bundler_refuses_are_refused_here() {
        assert!(check_tags(&[Tag::new("", "x")]).is_err());
        assert!(check_tags(&[Tag::new("a", "x".repeat(MAX_TAG_VALUE + 1))]).is_err());
        let many: Vec<Tag> = (0..=MAX_TAGS)
            .map(|i| Tag::new(format!("t{i}"), "v"))
            .collect();
        assert!(check_tags(&many).is_err());
    }
}
