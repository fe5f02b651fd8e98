//! Arweave's deep-hash: SHA-384 over a tree of byte strings, each tagged with its kind and
//! length, so that no two different trees hash alike. Transactions and ANS-104 data items sign
//! the deep-hash of their fields.

use sha2::{Digest, Sha384};

/// One node of the tree a signature covers.
#[derive(Debug, Clone)]
pub enum Chunk<'a> {
    Blob(&'a [u8]),
    /// A blob too large to hold (a clip's bytes): its length and its SHA-384, hashed as it
    /// streamed past.
    Hashed {
        len: u64,
        sha384: [u8; 48],
    },
    List(Vec<Chunk<'a>>),
}

fn sha384(parts: &[&[u8]]) -> [u8; 48] {
    let mut h = Sha384::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn blob(len: u64, data_hash: [u8; 48]) -> [u8; 48] {
    let tag = sha384(&[format!("blob{len}").as_bytes()]);
    sha384(&[&tag, &data_hash])
}

pub fn deep_hash(chunk: &Chunk<'_>) -> [u8; 48] {
    match chunk {
        Chunk::Blob(b) => blob(b.len() as u64, sha384(&[b])),
        Chunk::Hashed { len, sha384 } => blob(*len, *sha384),
        Chunk::List(items) => {
            let mut acc = sha384(&[format!("list{}", items.len()).as_bytes()]);
            for item in items {
                acc = sha384(&[&acc, &deep_hash(item)]);
            }
            acc
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_streamed_blob_hashes_as_the_same_bytes_held_whole() {
        let data = b"the bytes of a clip";
        let whole = deep_hash(&Chunk::Blob(data));
        let streamed = deep_hash(&Chunk::Hashed {
            len: data.len() as u64,
            sha384: sha384(&[data]),
        });
        assert_eq!(whole, streamed);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Produced by arweave@1.15.7's `deepHash` (and re-derived independently).
    #[test]
    fn deep_hashes_equal_arweave_js() {
        assert_eq!(
            hex(&deep_hash(&Chunk::Blob(b"hello"))),
            "33ab2407a6c328c0bc1bbe5971f49af5c1908985f83c3d2bd89a9e221dd8b068dc61ce968ba3f9ab12d5361ba3944382"
        );
        assert_eq!(
            hex(&deep_hash(&Chunk::Blob(b""))),
            "fbf00cc444f5fea9dc3bedf62a13fba8ae87e7445fc910567a23bec4eb82fadb1143c433069314d8362983dc3c2e4a38"
        );
        assert_eq!(
            hex(&deep_hash(&Chunk::List(vec![]))),
            "a69e7d37fdc7f040a9ec16aae84de24fab4a653dac4de0bd247e36bab9fe45d9289c5a04a893c95285812f5cefc9707a"
        );
        let nested = Chunk::List(vec![
            Chunk::Blob(b"a"),
            Chunk::List(vec![Chunk::Blob(b"b"), Chunk::Blob(b"c")]),
        ]);
        assert_eq!(
            hex(&deep_hash(&nested)),
            "30bce0a753c170f214f57dd0244bc29c76526aea405cd8bff8af8301a7d10424e1c57f63ab4d55070b99f48f72a8c2e7"
        );
    }

    #[test]
    fn a_list_and_its_concatenation_hash_differently() {
        let list = deep_hash(&Chunk::List(vec![Chunk::Blob(b"ab"), Chunk::Blob(b"c")]));
        let flat = deep_hash(&Chunk::List(vec![Chunk::Blob(b"a"), Chunk::Blob(b"bc")]));
        assert_ne!(list, flat);
        assert_ne!(
            deep_hash(&Chunk::Blob(b"")),
            deep_hash(&Chunk::List(vec![]))
        );
    }
}
