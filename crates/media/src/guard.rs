//! The one way outside files are let in: what a file is comes from its bytes, never its name,
//! and every size a header claims is checked against [`Limits`] before anything is allocated.
//! A 75-byte PNG that claims 200000×200000 pixels is an error, not a 160 GB allocation.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::MediaError;

/// What a decoder may be asked to hold. One set for the whole product: import, render,
/// thumbnails, previews, init images and masks all decode under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Width or height, in pixels.
    pub max_side: u32,
    /// Pixels in one frame.
    pub max_pixels: u64,
    /// Frames in one animation or video.
    pub max_frames: usize,
    /// Bytes of decoded RGBA across all frames.
    pub max_decoded_bytes: u64,
    /// Bytes of the file itself.
    pub max_file_bytes: u64,
}

impl Limits {
    /// 16384 px a side (what GPUs sample), 64 Mpx a frame (an 8192² sheet), 4096 frames, 2 GiB
    /// decoded, 1 GiB on disk.
    pub const DEFAULT: Limits = Limits {
        max_side: 16_384,
        max_pixels: 8192 * 8192,
        max_frames: 4096,
        max_decoded_bytes: 2 << 30,
        max_file_bytes: 1 << 30,
    };

    /// Refuses a frame of `w`×`h` before it is allocated.
    pub fn check_frame(&self, path: &Path, w: u32, h: u32) -> Result<(), MediaError> {
        if w == 0 || h == 0 {
            return Err(over(
                path,
                format!("claims {w}×{h} pixels: an image has none"),
            ));
        }
        if w > self.max_side || h > self.max_side {
            return Err(over(
                path,
                format!(
                    "claims {w}×{h} pixels, over the limit of {} pixels a side",
                    self.max_side
                ),
            ));
        }
        if u64::from(w) * u64::from(h) > self.max_pixels {
            return Err(over(
                path,
                format!(
                    "claims {w}×{h} pixels, over the limit of {} megapixels a frame",
                    self.max_pixels >> 20
                ),
            ));
        }
        Ok(())
    }

    /// Refuses `frames` frames of `w`×`h` before they are held.
    pub fn check_frames(
        &self,
        path: &Path,
        frames: usize,
        w: u32,
        h: u32,
    ) -> Result<(), MediaError> {
        if frames > self.max_frames {
            return Err(over(
                path,
                format!(
                    "has {frames} frames or more, over the limit of {} frames",
                    self.max_frames
                ),
            ));
        }
        let bytes = frames as u64 * u64::from(w) * u64::from(h) * 4;
        if bytes > self.max_decoded_bytes {
            return Err(over(
                path,
                format!(
                    "would decode to {} MiB ({frames} frames of {w}×{h}), over the limit of {} MiB",
                    bytes >> 20,
                    self.max_decoded_bytes >> 20
                ),
            ));
        }
        Ok(())
    }
}

fn over(path: &Path, what: String) -> MediaError {
    MediaError::OverLimit {
        path: path.to_owned(),
        what,
    }
}

pub use mintframe_types::MediaFormat as Format;

/// What a checked file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub frames: usize,
    pub size_bytes: u64,
}

/// Opens `path` only if it is a regular file within the size limit: a FIFO or a device would
/// block or never end, and a folder is not a file.
pub fn open_regular(path: &Path, limits: &Limits) -> Result<(File, u64), MediaError> {
    let io = |e: std::io::Error| MediaError::Image {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let ft = meta.file_type();
    if !ft.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if ft.is_dir() {
            "a folder"
        } else if ft.is_fifo() {
            "a named pipe (FIFO)"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(MediaError::Refused {
            path: path.to_owned(),
            reason: format!("is {what}; only regular files can be read"),
        });
    }
    let size = meta.len();
    if size == 0 {
        return Err(MediaError::Refused {
            path: path.to_owned(),
            reason: "is empty (0 bytes)".into(),
        });
    }
    if size > limits.max_file_bytes {
        return Err(over(
            path,
            format!(
                "is {} MiB, over the limit of {} MiB a file",
                size >> 20,
                limits.max_file_bytes >> 20
            ),
        ));
    }
    // O_NONBLOCK: if the path was swapped for a FIFO since the check, the open must not hang.
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nonblock())
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(MediaError::Refused {
            path: path.to_owned(),
            reason: "is not a regular file; only regular files can be read".into(),
        });
    }
    Ok((file, meta.len()))
}

/// `O_NONBLOCK` on Linux (the value every Linux architecture we build for uses); regular files
/// ignore it.
const fn libc_o_nonblock() -> i32 {
    0o4000
}

/// Reads the format of a regular file from its first bytes.
pub fn sniff_file(path: &Path, limits: &Limits) -> Result<(Format, u64), MediaError> {
    let (file, size) = open_regular(path, limits)?;
    let mut head = Vec::with_capacity(16);
    file.take(16)
        .read_to_end(&mut head)
        .map_err(|e| MediaError::Image {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    let format = Format::sniff(&head).ok_or_else(|| MediaError::Refused {
        path: path.to_owned(),
        reason: "is not a PNG, GIF, WebP, JPEG, MP4 or WebM file (its first bytes say so, whatever its name)"
            .into(),
    })?;
    Ok((format, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_read_from_bytes_not_names() {
        assert_eq!(Format::sniff(b"\x89PNG\r\n\x1a\n...."), Some(Format::Png));
        assert_eq!(Format::sniff(b"GIF89a"), Some(Format::Gif));
        assert_eq!(Format::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(Format::WebP));
        assert_eq!(Format::sniff(b"\0\0\0\x20ftypisom"), Some(Format::Mp4));
        assert_eq!(Format::sniff(b"\x1a\x45\xdf\xa3"), Some(Format::Matroska));
        assert_eq!(Format::sniff(b"hello, I am text"), None);
        assert_eq!(Format::sniff(b""), None);
    }

    #[test]
    fn a_claimed_size_over_the_limits_is_refused_with_the_limit_named() {
        let l = Limits::DEFAULT;
        let p = Path::new("x.png");
        let e = l
            .check_frame(p, 200_000, 200_000)
            .expect_err("refused")
            .to_string();
        assert!(
            e.contains("200000×200000") && e.contains("16384 pixels a side"),
            "{e}"
        );
        let e = l
            .check_frame(p, 16_000, 16_000)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("64 megapixels"), "{e}");
        let e = l
            .check_frames(p, 5000, 1, 1)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("4096 frames"), "{e}");
        let e = l
            .check_frames(p, 4000, 1024, 1024)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("2048 MiB"), "{e}");
        assert!(l.check_frames(p, 4096, 64, 64).is_ok());
    }

    #[test]
    fn fifos_folders_and_empty_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tmp");
        let fifo = dir.path().join("pipe.png");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(made.success());
        let e = crate::check_file(&fifo, &Limits::DEFAULT)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("named pipe"), "{e}");
        let e = crate::check_file(dir.path(), &Limits::DEFAULT)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("a folder"), "{e}");
        let e = crate::check_file(Path::new("/dev/zero"), &Limits::DEFAULT)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("a device"), "{e}");
        let empty = dir.path().join("e.png");
        std::fs::write(&empty, b"").expect("w");
        let e = crate::check_file(&empty, &Limits::DEFAULT)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("empty"), "{e}");
        let text = dir.path().join("t.png");
        std::fs::write(&text, b"just some text").expect("w");
        let e = crate::check_file(&text, &Limits::DEFAULT)
            .expect_err("refused")
            .to_string();
        assert!(e.contains("whatever its name"), "{e}");
    }
}

#[cfg(test)]
mod fuzz_replay {
    use std::path::PathBuf;

    fn files(kind: &str) -> Vec<PathBuf> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz")
            .join(kind)
            .join("media_bytes");
        std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }

    #[test]
    fn the_fuzz_seeds_decode_and_every_input_a_fuzzer_crashed_on_is_refused_cleanly() {
        let seeds = files("seeds");
        assert!(seeds.len() >= 4, "fuzz/seeds/media_bytes lost its seeds");
        for p in seeds {
            let bytes = std::fs::read(&p).expect("read");
            crate::decode_bytes(&bytes, &crate::Limits::DEFAULT)
                .unwrap_or_else(|e| panic!("seed {} does not decode: {e}", p.display()));
        }
        // Crashes found by `scripts/fuzz` are kept here; each must now be an error, not a panic.
        for p in files("regressions") {
            let bytes = std::fs::read(&p).expect("read");
            let _ = crate::decode_bytes(&bytes, &crate::Limits::DEFAULT);
        }
    }
}
