//! UnixFS DAGs built offline exactly as Kubo's `ipfs add` builds them, so every CID is known
//! before a byte reaches a node (and a node that answers differently is caught).
//!
//! Kubo's import profiles ([`Profile`]) say how: fixed-size chunks in a balanced tree, dag-pb or
//! raw leaves, CIDv0 or v1. Directories are dag-pb nodes whose links are sorted by name, until
//! their size passes the profile's threshold: then a HAMT-sharded directory ([`crate::hamt`]).

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest, Sha256};

pub use mintframe_types::CidProfile;

pub const CHUNK_SIZE: usize = 256 * 1024;
pub const MAX_LINKS: usize = 174;
/// Kubo's `Import.UnixFSHAMTDirectorySizeThreshold`.
pub const HAMT_THRESHOLD: u64 = 256 * 1024;

const CODEC_DAG_PB: u64 = 0x70;
const CODEC_RAW: u64 = 0x55;
const SHA2_256: u8 = 0x12;

/// Which CIDs to make, as Kubo's `--cid-version` (and its implied `--raw-leaves`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum CidVersion {
    /// base58 `Qm…`, dag-pb leaves: Kubo's default.
    #[default]
    V0,
    /// base32 `bafy…`/`bafk…`, raw leaves: Kubo's `--cid-version 1`.
    V1,
}

/// How a directory's size is estimated against the sharding threshold
/// (`Import.UnixFSHAMTDirectorySizeEstimation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeEstimate {
    /// The sum of each link's name and binary CID lengths (boxo before 2025).
    Links,
    /// The directory block's own serialized size.
    Block,
}

/// Everything about how a DAG is built that changes its CIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    pub version: CidVersion,
    pub chunk_size: usize,
    /// Links per internal file node before the tree grows a level.
    pub max_links: usize,
    /// A directory whose estimate passes this (strictly) is sharded.
    pub hamt_threshold: u64,
    pub estimate: SizeEstimate,
}

impl Profile {
    pub const UNIXFS_V0_2015: Profile = Profile {
        version: CidVersion::V0,
        chunk_size: CHUNK_SIZE,
        max_links: MAX_LINKS,
        hamt_threshold: HAMT_THRESHOLD,
        estimate: SizeEstimate::Links,
    };
    pub const CID_V1: Profile = Profile {
        version: CidVersion::V1,
        ..Profile::UNIXFS_V0_2015
    };
    pub const UNIXFS_V1_2025: Profile = Profile {
        version: CidVersion::V1,
        chunk_size: 1024 * 1024,
        max_links: 1024,
        hamt_threshold: HAMT_THRESHOLD,
        estimate: SizeEstimate::Block,
    };

    pub fn of(profile: CidProfile) -> Profile {
        match profile {
            CidProfile::UnixfsV0_2015 => Profile::UNIXFS_V0_2015,
            CidProfile::CidV1 => Profile::CID_V1,
            CidProfile::UnixfsV1_2025 => Profile::UNIXFS_V1_2025,
        }
    }

    /// What plain `ipfs add [--cid-version 1]` does.
    pub fn for_version(version: CidVersion) -> Profile {
        match version {
            CidVersion::V0 => Profile::UNIXFS_V0_2015,
            CidVersion::V1 => Profile::CID_V1,
        }
    }
}

/// A content identifier: version, codec and a sha2-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid {
    version: CidVersion,
    codec: u64,
    digest: [u8; 32],
}

impl Cid {
    pub(crate) fn dag_pb(version: CidVersion, block: &[u8]) -> Cid {
        Cid::of(version, CODEC_DAG_PB, block)
    }

    fn of(version: CidVersion, codec: u64, block: &[u8]) -> Cid {
        Cid {
            version,
            codec,
            digest: Sha256::digest(block).into(),
        }
    }

    /// The binary form, as it appears inside dag-pb links and CAR files.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(38);
        if self.version == CidVersion::V1 {
            put_varint(&mut out, 1);
            put_varint(&mut out, self.codec);
        }
        out.push(SHA2_256);
        out.push(32);
        out.extend_from_slice(&self.digest);
        out
    }

    pub fn version(&self) -> CidVersion {
        self.version
    }

    pub fn is_raw(&self) -> bool {
        self.codec == CODEC_RAW
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            CidVersion::V0 => f.write_str(&base58btc(&self.to_bytes())),
            CidVersion::V1 => write!(f, "b{}", base32_lower(&self.to_bytes())),
        }
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({self})")
    }
}

/// One block of a DAG: its CID and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub cid: Cid,
    pub data: Vec<u8>,
}

/// The root of a built DAG with the sizes a parent's link needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub cid: Cid,
    /// Bytes of file content below this node.
    pub file_size: u64,
    /// Bytes of every block below and including this node (a dag-pb link's `Tsize`).
    pub dag_size: u64,
    /// Whether a HAMT-sharded directory is part of it (a node that does not shard as Kubo
    /// does cannot `add` it to the same CID).
    pub sharded: bool,
}

pub(crate) struct Link<'a> {
    pub(crate) cid: Cid,
    pub(crate) name: &'a str,
    pub(crate) tsize: u64,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

pub(crate) fn put_varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    put_varint(out, field << 3);
    put_varint(out, v);
}

/// UnixFS `Data` message: Type, Data, filesize, blocksizes (proto2, so set fields are written
/// even when zero, and repeated ones unpacked — as Kubo writes them).
fn unixfs_data(
    kind: u64,
    data: Option<&[u8]>,
    file_size: Option<u64>,
    block_sizes: &[u64],
) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint_field(&mut out, 1, kind);
    if let Some(d) = data {
        put_bytes_field(&mut out, 2, d);
    }
    if let Some(s) = file_size {
        put_varint_field(&mut out, 3, s);
    }
    for b in block_sizes {
        put_varint_field(&mut out, 4, *b);
    }
    out
}

/// A dag-pb node: links first, then data (the canonical order of the dag-pb spec).
pub(crate) fn dag_pb(links: &[Link<'_>], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in links {
        let mut link = Vec::new();
        put_bytes_field(&mut link, 1, &l.cid.to_bytes());
        put_bytes_field(&mut link, 2, l.name.as_bytes());
        put_varint_field(&mut link, 3, l.tsize);
        put_bytes_field(&mut out, 2, &link);
    }
    put_bytes_field(&mut out, 1, data);
    out
}

const TYPE_DIRECTORY: u64 = 1;
const TYPE_FILE: u64 = 2;

/// Builds a file's DAG from `src`, handing each block to `sink` (children before parents).
pub fn file(
    src: &mut dyn Read,
    profile: &Profile,
    sink: &mut dyn FnMut(Block) -> io::Result<()>,
) -> io::Result<Node> {
    let mut chunks = Chunker::new(src, profile.chunk_size);
    let mut builder = Builder {
        version: profile.version,
        max_links: profile.max_links,
        sink,
    };
    let first = chunks.next_chunk()?.unwrap_or_default();
    let mut root = builder.leaf(&first)?;
    let mut depth = 1;
    while !chunks.done()? {
        // A new root whose first child is the old one, filled to `depth` levels.
        root = builder.fill(&mut chunks, vec![root], depth)?;
        depth += 1;
    }
    Ok(root)
}

struct Builder<'s> {
    version: CidVersion,
    max_links: usize,
    sink: &'s mut dyn FnMut(Block) -> io::Result<()>,
}

impl Builder<'_> {
    fn emit(&mut self, codec: u64, data: Vec<u8>) -> io::Result<Cid> {
        let cid = Cid::of(self.version, codec, &data);
        (self.sink)(Block { cid, data })?;
        Ok(cid)
    }

    fn leaf(&mut self, chunk: &[u8]) -> io::Result<Node> {
        let len = chunk.len() as u64;
        if self.version == CidVersion::V1 {
            let cid = self.emit(CODEC_RAW, chunk.to_vec())?;
            return Ok(Node {
                cid,
                file_size: len,
                dag_size: len,
                sharded: false,
            });
        }
        // An empty file has no Data field at all (Kubo's empty-file CID depends on it).
        let data = (!chunk.is_empty()).then_some(chunk);
        let block = dag_pb(&[], &unixfs_data(TYPE_FILE, data, Some(len), &[]));
        let dag_size = block.len() as u64;
        let cid = self.emit(CODEC_DAG_PB, block)?;
        Ok(Node {
            cid,
            file_size: len,
            dag_size,
            sharded: false,
        })
    }

    /// Fills an internal node (which may start with children) with up to `max_links`
    /// subtrees of `depth - 1` levels, as go-unixfs' balanced layout does.
    fn fill(
        &mut self,
        chunks: &mut Chunker<'_>,
        mut children: Vec<Node>,
        depth: u32,
    ) -> io::Result<Node> {
        while children.len() < self.max_links && !chunks.done()? {
            let child = if depth == 1 {
                let chunk = chunks.next_chunk()?.unwrap_or_default();
                self.leaf(&chunk)?
            } else {
                self.fill(chunks, Vec::new(), depth - 1)?
            };
            children.push(child);
        }
        let file_size = children.iter().map(|c| c.file_size).sum();
        let sizes: Vec<u64> = children.iter().map(|c| c.file_size).collect();
        let links: Vec<Link<'_>> = children
            .iter()
            .map(|c| Link {
                cid: c.cid,
                name: "",
                tsize: c.dag_size,
            })
            .collect();
        let block = dag_pb(
            &links,
            &unixfs_data(TYPE_FILE, None, Some(file_size), &sizes),
        );
        let dag_size = block.len() as u64 + children.iter().map(|c| c.dag_size).sum::<u64>();
        let cid = self.emit(CODEC_DAG_PB, block)?;
        Ok(Node {
            cid,
            file_size,
            dag_size,
            sharded: false,
        })
    }
}

/// A directory over named children: one node with its links sorted by name, as Kubo sorts them,
/// or, past the profile's threshold, a HAMT-sharded directory.
pub fn directory(
    entries: &[(String, Node)],
    profile: &Profile,
    sink: &mut dyn FnMut(Block) -> io::Result<()>,
) -> io::Result<Node> {
    let estimate = match profile.estimate {
        SizeEstimate::Links => entries
            .iter()
            .map(|(name, n)| (name.len() + n.cid.to_bytes().len()) as u64)
            .sum(),
        SizeEstimate::Block => basic_directory_block(entries).1.len() as u64,
    };
    if estimate > profile.hamt_threshold {
        return crate::hamt::directory(entries, profile, sink);
    }
    let (sorted, block) = basic_directory_block(entries);
    let dag_size = block.len() as u64 + sorted.iter().map(|(_, n)| n.dag_size).sum::<u64>();
    let cid = Cid::of(profile.version, CODEC_DAG_PB, &block);
    sink(Block { cid, data: block })?;
    Ok(Node {
        cid,
        file_size: sorted.iter().map(|(_, n)| n.file_size).sum(),
        dag_size,
        sharded: sorted.iter().any(|(_, n)| n.sharded),
    })
}

/// The one-node directory's block, and its entries in link order.
fn basic_directory_block(entries: &[(String, Node)]) -> (Vec<&(String, Node)>, Vec<u8>) {
    let mut sorted: Vec<&(String, Node)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let links: Vec<Link<'_>> = sorted
        .iter()
        .map(|(name, n)| Link {
            cid: n.cid,
            name,
            tsize: n.dag_size,
        })
        .collect();
    let block = dag_pb(&links, &unixfs_data(TYPE_DIRECTORY, None, None, &[]));
    (sorted, block)
}

/// Fixed-size chunks, reading ahead one byte so "is there more?" is known without a short
/// final chunk of zero bytes.
struct Chunker<'r> {
    src: &'r mut dyn Read,
    size: usize,
    peeked: Option<u8>,
    eof: bool,
}

impl<'r> Chunker<'r> {
    fn new(src: &'r mut dyn Read, size: usize) -> Chunker<'r> {
        Chunker {
            src,
            size,
            peeked: None,
            eof: false,
        }
    }

    fn done(&mut self) -> io::Result<bool> {
        if self.peeked.is_some() {
            return Ok(false);
        }
        if self.eof {
            return Ok(true);
        }
        let mut b = [0u8; 1];
        loop {
            match self.src.read(&mut b) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(true);
                }
                Ok(_) => {
                    self.peeked = Some(b[0]);
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.done()? {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(self.size);
        if let Some(b) = self.peeked.take() {
            buf.push(b);
        }
        let mut limited = (&mut *self.src).take((self.size - buf.len()) as u64);
        limited.read_to_end(&mut buf)?;
        if buf.len() < self.size {
            self.eof = true;
        }
        Ok(Some(buf))
    }
}

/// Writes a CARv1: a dag-cbor header naming the roots, then each block as
/// `varint(len) cid data`.
pub fn write_car(out: &mut dyn io::Write, roots: &[Cid], blocks: &[Block]) -> io::Result<()> {
    let mut header = Vec::new();
    header.push(0xa2); // map of 2
    header.push(0x65); // text(5)
    header.extend_from_slice(b"roots");
    cbor_head(&mut header, 4, roots.len() as u64);
    for r in roots {
        let bytes = r.to_bytes();
        header.extend_from_slice(&[0xd8, 42]); // tag 42: CID
        cbor_head(&mut header, 2, bytes.len() as u64 + 1);
        header.push(0); // the multibase identity prefix dag-cbor puts before a binary CID
        header.extend_from_slice(&bytes);
    }
    header.push(0x67);
    header.extend_from_slice(b"version");
    header.push(0x01);
    let mut prefix = Vec::new();
    put_varint(&mut prefix, header.len() as u64);
    out.write_all(&prefix)?;
    out.write_all(&header)?;
    for b in blocks {
        write_car_block(out, b)?;
    }
    Ok(())
}

/// One block of a CARv1 body, so a CAR can be written as blocks are made (header first, with
/// `write_car(out, roots, &[])`).
pub fn write_car_block(out: &mut dyn io::Write, b: &Block) -> io::Result<()> {
    let cid = b.cid.to_bytes();
    let mut len = Vec::new();
    put_varint(&mut len, (cid.len() + b.data.len()) as u64);
    out.write_all(&len)?;
    out.write_all(&cid)?;
    out.write_all(&b.data)
}

fn cbor_head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

fn base58btc(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &byte in bytes {
        let mut carry = byte as u32;
        for d in digits.iter_mut() {
            carry += (*d as u32) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut s = String::with_capacity(zeros + digits.len());
    s.extend(std::iter::repeat_n('1', zeros));
    s.extend(digits.iter().rev().map(|d| ALPHABET[*d as usize] as char));
    s
}

fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut s = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            s.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        s.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid_of(bytes: &[u8], version: CidVersion) -> String {
        file(&mut &bytes[..], &Profile::for_version(version), &mut |_| {
            Ok(())
        })
        .expect("dag")
        .cid
        .to_string()
    }

    /// Kubo's own vectors.
    #[test]
    fn kubo_vectors() {
        assert_eq!(
            cid_of(b"hello\n", CidVersion::V0),
            "QmZULkCELmmk5XNfCgTnCyFgAVxBRBXyDHGGMVoLFLiXEN"
        );
        assert_eq!(
            cid_of(b"", CidVersion::V0),
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
        );
        assert_eq!(
            cid_of(b"", CidVersion::V1),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        assert_eq!(
            cid_of(b"hello world", CidVersion::V1),
            "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
        );
    }

    #[test]
    fn chunks_are_256_kib_and_the_tree_is_balanced() {
        let data = vec![7u8; CHUNK_SIZE * 3 + 10];
        let mut blocks = Vec::new();
        let root = file(&mut &data[..], &Profile::CID_V1, &mut |b| {
            blocks.push(b);
            Ok(())
        })
        .expect("dag");
        // Three identical full chunks and one short one, then the root.
        assert_eq!(blocks.len(), 5);
        assert_eq!(blocks[0].data.len(), CHUNK_SIZE);
        assert_eq!(blocks[3].data.len(), 10);
        assert_eq!(blocks[0].cid, blocks[1].cid);
        assert_eq!(root.file_size, data.len() as u64);
        assert!(!root.cid.is_raw());
        assert_eq!(root.cid, blocks[4].cid);
    }

    #[test]
    fn more_than_174_chunks_make_a_second_level() {
        let data: Vec<u8> = (0..(CHUNK_SIZE * 175 + 1))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut internal = 0;
        let root = file(&mut &data[..], &Profile::CID_V1, &mut |b| {
            if !b.cid.is_raw() {
                internal += 1;
            }
            Ok(())
        })
        .expect("dag");
        // The first 174 chunks fill one node; it becomes the first child of a new root whose
        // second child holds the remaining two chunks.
        assert_eq!(internal, 3);
        assert_eq!(root.file_size, data.len() as u64);
    }

    #[test]
    fn base_encodings() {
        assert_eq!(base58btc(&[0, 0, 1]), "112");
        assert_eq!(base32_lower(b"f"), "my");
        assert_eq!(base32_lower(b"foobar"), "mzxw6ytboi");
    }
}
