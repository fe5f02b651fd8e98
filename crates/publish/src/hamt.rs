//! HAMT-sharded UnixFS directories, built as boxo (Kubo's importer) builds them: 256 buckets per
//! node, chosen by successive bytes of the name's murmur3 x64 hash (the first 64 bits of
//! x64_128, big-endian, as `spaolacci/murmur3`'s `New64` gives them), so the same entries give
//! the same DAG whatever order they are added in.
//!
//! A bucket holding one entry links it directly, named by the bucket's two upper-case hex
//! digits and then the entry's name; a bucket two or more entries share is a child shard, named
//! by the digits alone, which splits them on the next byte of their hashes.

use std::io;

use crate::unixfs::{Block, Cid, Link, Node, Profile, dag_pb, put_bytes_field, put_varint_field};

/// UnixFS `Data.Type` of a shard node.
const TYPE_HAMT_SHARD: u64 = 5;
/// The multicodec of murmur3-x64-64, the hash Kubo names in each shard.
const HASH_MURMUR3_X64_64: u64 = 0x22;
pub const FANOUT: usize = 256;

/// murmur3 x64_128 with seed 0; the first half (`h1`), big-endian.
pub fn murmur3_x64_64(data: &[u8]) -> [u8; 8] {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let (mut h1, mut h2) = (0u64, 0u64);
    let mut blocks = data.chunks_exact(16);
    for b in &mut blocks {
        let mut k1 = u64::from_le_bytes(b[..8].try_into().unwrap_or_default());
        let mut k2 = u64::from_le_bytes(b[8..].try_into().unwrap_or_default());
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1
            .rotate_left(27)
            .wrapping_add(h2)
            .wrapping_mul(5)
            .wrapping_add(0x52dc_e729);
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2
            .rotate_left(31)
            .wrapping_add(h1)
            .wrapping_mul(5)
            .wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    let (mut k1, mut k2) = (0u64, 0u64);
    for (i, &b) in tail.iter().enumerate() {
        if i < 8 {
            k1 |= (b as u64) << (8 * i);
        } else {
            k2 |= (b as u64) << (8 * (i - 8));
        }
    }
    if tail.len() > 8 {
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    }
    if !tail.is_empty() {
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix(h1);
    h2 = fmix(h2);
    h1 = h1.wrapping_add(h2);
    h1.to_be_bytes()
}

fn fmix(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

struct Entry<'a> {
    hash: [u8; 8],
    name: &'a str,
    node: Node,
}

/// The sharded directory over `entries` (names unique), its shard blocks handed to `sink`
/// children first.
pub fn directory(
    entries: &[(String, Node)],
    profile: &Profile,
    sink: &mut dyn FnMut(Block) -> io::Result<()>,
) -> io::Result<Node> {
    let items: Vec<Entry<'_>> = entries
        .iter()
        .map(|(name, node)| Entry {
            hash: murmur3_x64_64(name.as_bytes()),
            name,
            node: *node,
        })
        .collect();
    shard(items, 0, profile, sink)
}

fn shard(
    mut items: Vec<Entry<'_>>,
    depth: usize,
    profile: &Profile,
    sink: &mut dyn FnMut(Block) -> io::Result<()>,
) -> io::Result<Node> {
    if depth >= 8 {
        // 64 bits of hash spent: two names that agree on all of them cannot be told apart.
        let names: Vec<&str> = items.iter().map(|e| e.name).collect();
        return Err(io::Error::other(format!(
            "the names {names:?} have the same 64-bit hash; a sharded directory cannot hold both"
        )));
    }
    items.sort_by(|a, b| a.hash[depth].cmp(&b.hash[depth]).then(a.name.cmp(b.name)));
    let mut bitfield = [0u8; FANOUT / 8];
    let mut children: Vec<(String, Node)> = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let bucket = rest[0].hash[depth];
        let split = rest
            .iter()
            .position(|e| e.hash[depth] != bucket)
            .unwrap_or(rest.len());
        let tail = rest.split_off(split);
        let group = std::mem::replace(&mut rest, tail);
        bitfield[FANOUT / 8 - 1 - bucket as usize / 8] |= 1 << (bucket % 8);
        if group.len() == 1 {
            let e = &group[0];
            children.push((format!("{bucket:02X}{}", e.name), e.node));
        } else {
            let child = shard(group, depth + 1, profile, sink)?;
            children.push((format!("{bucket:02X}"), child));
        }
    }
    let links: Vec<Link<'_>> = children
        .iter()
        .map(|(name, n)| Link {
            cid: n.cid,
            name,
            tsize: n.dag_size,
        })
        .collect();
    let mut data = Vec::new();
    put_varint_field(&mut data, 1, TYPE_HAMT_SHARD);
    // go-bitfield's `Bytes()`: big-endian with its leading zero bytes trimmed.
    let first = bitfield
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bitfield.len());
    put_bytes_field(&mut data, 2, &bitfield[first..]);
    put_varint_field(&mut data, 5, HASH_MURMUR3_X64_64);
    put_varint_field(&mut data, 6, FANOUT as u64);
    let block = dag_pb(&links, &data);
    let dag_size = block.len() as u64 + children.iter().map(|(_, n)| n.dag_size).sum::<u64>();
    let cid = Cid::dag_pb(profile.version, &block);
    sink(Block { cid, data: block })?;
    Ok(Node {
        cid,
        file_size: children.iter().map(|(_, n)| n.file_size).sum(),
        dag_size,
        sharded: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from the reference implementation (PyPI `mmh3.hash128(…, 0, x64arch=True)`,
    /// low 64 bits).
    #[test]
    fn murmur3_matches_the_reference_on_every_tail_length() {
        let hex = |b: [u8; 8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(murmur3_x64_64(b"")), "0000000000000000");
        assert_eq!(hex(murmur3_x64_64(b"hello")), "cbd8a7b341bd9b02");
        assert_eq!(hex(murmur3_x64_64(b"0")), "2ac9debed546a380");
        assert_eq!(hex(murmur3_x64_64(b"collection.json")), "fe2afc3cf7affd4a");
        assert_eq!(hex(murmur3_x64_64(&[b'a'; 17])), "6f7214c7cef2d698");
    }
}
