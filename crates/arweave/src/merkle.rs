//! The Merkle tree over a transaction's data that Arweave stores it by: the data cut into chunks
//! of at most 256 KiB (the last two balanced so neither is under 32 KiB), each leaf the hash of
//! a chunk's SHA-256 and its end offset, each branch the hash of its children and the offset
//! between them. Its root is the transaction's `data_root`; a chunk is accepted with the path
//! from the root down to its leaf.

use std::io::Read;

use sha2::{Digest, Sha256};

pub const MAX_CHUNK: u64 = 256 * 1024;
pub const MIN_CHUNK: u64 = 32 * 1024;
const NOTE: usize = 32;

/// Where each chunk starts and ends (end exclusive), from the data's size alone. The last
/// range may be empty (data a multiple of 256 KiB): it counts in the root but is never sent.
pub fn chunk_ranges(size: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut cursor = 0;
    let mut rest = size;
    while rest >= MAX_CHUNK {
        let mut len = MAX_CHUNK;
        let next = rest - MAX_CHUNK;
        if next > 0 && next < MIN_CHUNK {
            len = rest.div_ceil(2);
        }
        out.push((cursor, cursor + len));
        cursor += len;
        rest -= len;
    }
    out.push((cursor, cursor + rest));
    out
}

fn note(n: u64) -> [u8; NOTE] {
    let mut b = [0u8; NOTE];
    b[NOTE - 8..].copy_from_slice(&n.to_be_bytes());
    b
}

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

enum Node {
    Leaf {
        id: [u8; 32],
        data_hash: [u8; 32],
        max: u64,
    },
    Branch {
        id: [u8; 32],
        byte_range: u64,
        max: u64,
        left: Box<Node>,
        right: Box<Node>,
    },
}

impl Node {
    fn id(&self) -> [u8; 32] {
        match self {
            Node::Leaf { id, .. } | Node::Branch { id, .. } => *id,
        }
    }
    fn max(&self) -> u64 {
        match self {
            Node::Leaf { max, .. } | Node::Branch { max, .. } => *max,
        }
    }
}

/// One chunk as the gateway's `/chunk` endpoint takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub start: u64,
    pub end: u64,
    /// The path from the root to this chunk's leaf.
    pub proof: Vec<u8>,
}

impl Chunk {
    /// The `offset` the gateway is told: the chunk's last byte.
    pub fn offset(&self) -> u64 {
        self.end - 1
    }
}

#[derive(Debug, Clone)]
pub struct Tree {
    pub data_root: [u8; 32],
    pub size: u64,
    /// Every chunk to send, in order (an empty last range is not among them).
    pub chunks: Vec<Chunk>,
}

impl Tree {
    /// Hashes `size` bytes of `data` chunk by chunk (never more than one chunk held).
    pub fn build(data: &mut dyn Read, size: u64) -> std::io::Result<Self> {
        let mut leaves = Vec::new();
        let mut buf = vec![0u8; MAX_CHUNK as usize];
        for (start, end) in chunk_ranges(size) {
            let part = &mut buf[..(end - start) as usize];
            data.read_exact(part)?;
            let data_hash = sha(&[part]);
            leaves.push(Node::Leaf {
                id: sha(&[&sha(&[&data_hash]), &sha(&[&note(end)])]),
                data_hash,
                max: end,
            });
        }
        let mut layer = leaves;
        while layer.len() > 1 {
            let mut next = Vec::with_capacity(layer.len().div_ceil(2));
            let mut it = layer.into_iter();
            while let Some(left) = it.next() {
                match it.next() {
                    Some(right) => {
                        let byte_range = left.max();
                        next.push(Node::Branch {
                            id: sha(&[
                                &sha(&[&left.id()]),
                                &sha(&[&right.id()]),
                                &sha(&[&note(byte_range)]),
                            ]),
                            byte_range,
                            max: right.max(),
                            left: Box::new(left),
                            right: Box::new(right),
                        });
                    }
                    None => next.push(left),
                }
            }
            layer = next;
        }
        let root = layer
            .pop()
            .ok_or_else(|| std::io::Error::other("no chunks"))?;
        let mut chunks = Vec::new();
        proofs(&root, Vec::new(), &mut chunks);
        let mut start = 0;
        for c in &mut chunks {
            c.start = start;
            start = c.end;
        }
        if chunks.last().is_some_and(|c| c.start == c.end) {
            chunks.pop();
        }
        Ok(Self {
            data_root: root.id(),
            size,
            chunks,
        })
    }
}

fn proofs(node: &Node, path: Vec<u8>, out: &mut Vec<Chunk>) {
    match node {
        Node::Leaf { data_hash, max, .. } => {
            let mut proof = path;
            proof.extend_from_slice(data_hash);
            proof.extend_from_slice(&note(*max));
            out.push(Chunk {
                start: 0,
                end: *max,
                proof,
            });
        }
        Node::Branch {
            byte_range,
            left,
            right,
            ..
        } => {
            let mut here = path;
            here.extend_from_slice(&left.id());
            here.extend_from_slice(&right.id());
            here.extend_from_slice(&note(*byte_range));
            proofs(left, here.clone(), out);
            proofs(right, here, out);
        }
    }
}

/// Checks a chunk's path against a data root the way a node does, and returns the chunk's
/// SHA-256 and its byte range. Used by the tests and before resending a chunk we kept.
pub fn validate_path(
    root: &[u8; 32],
    offset: u64,
    size: u64,
    path: &[u8],
) -> Option<([u8; 32], u64, u64)> {
    let offset = offset.min(size.saturating_sub(1));
    let (mut id, mut left_bound, mut right_bound, mut rest) = (*root, 0u64, size, path);
    loop {
        if rest.len() == 64 {
            let (data_hash, end) = rest.split_at(32);
            let want = sha(&[&sha(&[data_hash]), &sha(&[end])]);
            if want != id {
                return None;
            }
            let end = u64::from_be_bytes(end[NOTE - 8..].try_into().ok()?);
            return Some((data_hash.try_into().ok()?, left_bound, end.min(right_bound)));
        }
        if rest.len() < 96 {
            return None;
        }
        let (l, r_and) = rest.split_at(32);
        let (r, n_and) = r_and.split_at(32);
        let (n, tail) = n_and.split_at(NOTE);
        if sha(&[&sha(&[l]), &sha(&[r]), &sha(&[n])]) != id {
            return None;
        }
        let byte_range = u64::from_be_bytes(n[NOTE - 8..].try_into().ok()?);
        if offset < byte_range {
            id = l.try_into().ok()?;
            right_bound = right_bound.min(byte_range);
        } else {
            id = r.try_into().ok()?;
            left_bound = left_bound.max(byte_range);
        }
        rest = tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_two_chunks_are_balanced_so_neither_is_under_32_kib() {
        assert_eq!(chunk_ranges(0), vec![(0, 0)]);
        assert_eq!(chunk_ranges(100), vec![(0, 100)]);
        let k = 1024;
        assert_eq!(
            chunk_ranges(256 * k),
            vec![(0, 256 * k), (256 * k, 256 * k)]
        );
        // 256 KiB + 10 KiB: 133 KiB and 133 KiB rather than 256 KiB and 10 KiB.
        assert_eq!(
            chunk_ranges(266 * k),
            vec![(0, 133 * k), (133 * k, 266 * k)]
        );
        // 256 KiB + 40 KiB: the tail is big enough to stand alone.
        assert_eq!(
            chunk_ranges(296 * k),
            vec![(0, 256 * k), (256 * k, 296 * k)]
        );
    }

    /// Data roots arweave@1.15.7 computes for `byte[i] = i % 251` (and one full path).
    #[test]
    fn data_roots_and_paths_equal_arweave_js() {
        let cases = [
            (1u64, "Ht_yZhXGBDUZfLv4OD6we7FkrjcpDpGPwQZEZgEJVfk"),
            (1000, "OBN0lHZnrFrskv9s1HKU7VRRDXrzQ3sOgMniX5cGavM"),
            (262_144, "gty7KB2baLFp7OGxuV2wBeX3NippS1tNVlMOZryIq5o"),
            (262_145, "kJKkN6QWAcUM_WQUxeNXnnwKy0fp7myUNNob6XNlOPA"),
            (270_000, "L_vJ61btmXFar7lSMUGgilerFpEeVmCmnWKTqTy777c"),
            (300_000, "48NCFfChsqNv4kmqH4QDmwtV9ejBNlPutiSwwAuFCwg"),
            (524_288, "H2bNmvftzAlIQXVYCetFsJ9f0uoC4C2FbfivZTRSyqI"),
            (600_000, "O5pWr9emcTCZCog2mLsx1oILM5LhWt31xz_16qteDow"),
        ];
        for (len, root) in cases {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let tree = Tree::build(&mut data.as_slice(), len).expect("in a test");
            assert_eq!(crate::b64::encode(&tree.data_root), root, "{len} bytes");
        }
        let data: Vec<u8> = (0..300_000u64).map(|i| (i % 251) as u8).collect();
        let tree = Tree::build(&mut data.as_slice(), 300_000).expect("in a test");
        assert_eq!(tree.chunks[1].offset(), 299_999);
        assert_eq!(
            crate::b64::encode(&tree.chunks[1].proof),
            "YZi7XfKPo5PRYP9XnM_oScKlEJ5CigeMbB1v7WEsofmiFp2vwNXFgtCwF06oVAxCQeHXwfSMfmRppHItRrbQCAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABAAANx5WGkoDqnWZ3oBatmleFWgJ_NvSpqQEtl4LZRgCOdUAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAST4A"
        );
        // A multiple of 256 KiB: the empty last leaf is in the root, not among the chunks.
        let data: Vec<u8> = (0..262_144u64).map(|i| (i % 251) as u8).collect();
        let tree = Tree::build(&mut data.as_slice(), 262_144).expect("in a test");
        assert_eq!(tree.chunks.len(), 1);
        assert_eq!(tree.chunks[0].proof.len(), 160);
    }

    #[test]
    fn every_chunks_path_proves_its_bytes_against_the_root() {
        for size in [
            1u64,
            1000,
            256 * 1024,
            256 * 1024 * 3 + 5,
            256 * 1024 * 5 + 40_000,
        ] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            let tree = Tree::build(&mut data.as_slice(), size).expect("in a test");
            assert_eq!(tree.chunks.last().expect("in a test").end, size);
            for c in &tree.chunks {
                let (hash, lo, hi) =
                    validate_path(&tree.data_root, c.offset(), size, &c.proof).expect("in a test");
                assert_eq!((lo, hi), (c.start, c.end));
                assert_eq!(hash, sha(&[&data[c.start as usize..c.end as usize]]));
                // A path for another root, or a flipped byte, is refused.
                let mut bad = c.proof.clone();
                bad[0] ^= 1;
                assert!(validate_path(&tree.data_root, c.offset(), size, &bad).is_none());
            }
        }
    }
}
