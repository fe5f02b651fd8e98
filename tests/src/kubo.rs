//! Kubo's deterministic test data (`test/cli/testutils/random_deterministic.go` and
//! `createDeterministicFiles` in `add_test.go`), so Kubo's own CID vectors can be made again:
//! ChaCha20 with key sha256(seed) and a zero nonce, and file names drawn from that stream over
//! Kubo's `AlphabetEasy`.

use std::path::Path;

use sha2::{Digest, Sha256};

/// ChaCha20 (RFC 8439) keystream from block 0, as Go's `chacha20.XORKeyStream` over zeros.
#[derive(Debug)]
pub struct KeyStream {
    pub key: [u32; 8],
    pub counter: u32,
    pub block: [u8; 64],
    pub used: usize,
}

impl KeyStream {
    pub fn new(seed: &str) -> KeyStream {
        let digest: [u8; 32] = Sha256::digest(seed.as_bytes()).into();
        let mut key = [0u32; 8];
        for (k, c) in key.iter_mut().zip(digest.chunks_exact(4)) {
            *k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        KeyStream {
            key,
            counter: 0,
            block: [0; 64],
            used: 64,
        }
    }

    fn refill(&mut self) {
        let mut s = [0u32; 16];
        s[..4].copy_from_slice(&[0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574]);
        s[4..12].copy_from_slice(&self.key);
        s[12] = self.counter;
        let mut x = s;
        let qr = |x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize| {
            x[a] = x[a].wrapping_add(x[b]);
            x[d] = (x[d] ^ x[a]).rotate_left(16);
            x[c] = x[c].wrapping_add(x[d]);
            x[b] = (x[b] ^ x[c]).rotate_left(12);
            x[a] = x[a].wrapping_add(x[b]);
            x[d] = (x[d] ^ x[a]).rotate_left(8);
            x[c] = x[c].wrapping_add(x[d]);
            x[b] = (x[b] ^ x[c]).rotate_left(7);
        };
        for _ in 0..10 {
            qr(&mut x, 0, 4, 8, 12);
            qr(&mut x, 1, 5, 9, 13);
            qr(&mut x, 2, 6, 10, 14);
            qr(&mut x, 3, 7, 11, 15);
            qr(&mut x, 0, 5, 10, 15);
            qr(&mut x, 1, 6, 11, 12);
            qr(&mut x, 2, 7, 8, 13);
            qr(&mut x, 3, 4, 9, 14);
        }
        for (i, (a, b)) in x.iter().zip(s.iter()).enumerate() {
            self.block[4 * i..4 * i + 4].copy_from_slice(&a.wrapping_add(*b).to_le_bytes());
        }
        self.counter += 1;
        self.used = 0;
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for o in out {
            if self.used == 64 {
                self.refill();
            }
            *o = self.block[self.used];
            self.used += 1;
        }
    }
}

/// `n` bytes of Kubo's `DeterministicRandomReaderBytes(n, seed)`, read in chunks.
#[derive(Debug)]
pub struct Deterministic {
    pub stream: KeyStream,
    pub left: u64,
}

impl std::io::Read for Deterministic {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        self.stream.fill(&mut buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// `size` bytes of Kubo's `DeterministicRandomReaderBytes(size, seed)`.
pub fn bytes(size: u64, seed: &str) -> Deterministic {
    Deterministic {
        stream: KeyStream::new(seed),
        left: size,
    }
}

/// Kubo's `createDeterministicFiles`: `files` files in `dir`, named by `name_len` characters
/// (the last by `last_len`), each holding `x`.
pub fn write_folder(dir: &Path, files: usize, name_len: usize, last_len: usize, seed: &str) {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz01234567890-_";
    std::fs::create_dir_all(dir).unwrap();
    let mut stream = KeyStream::new(seed);
    for i in 0..files {
        let mut raw = vec![0u8; if i == files - 1 { last_len } else { name_len }];
        stream.fill(&mut raw);
        let name: String = raw
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect();
        std::fs::write(dir.join(name), b"x").unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chacha20_gives_the_rfc_7539_keystream() {
        // RFC 7539 A.1, test vector 1: zero key, zero nonce, block 0.
        let mut s = KeyStream {
            key: [0; 8],
            counter: 0,
            block: [0; 64],
            used: 64,
        };
        let mut out = [0u8; 8];
        s.fill(&mut out);
        assert_eq!(out, [0x76, 0xb8, 0xe0, 0xad, 0xa0, 0xf1, 0x3d, 0x90]);
    }
}
