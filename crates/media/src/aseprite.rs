//! `.aseprite` files, written and read as Aseprite's file spec describes them
//! (`docs/ase-file-specs.md` in Aseprite's repository): written as one layer with a cel per
//! frame, frame durations, tags and a pivot slice; read back from any RGBA, grayscale or indexed
//! file, its visible layers composited, every size checked against [`Limits`] first.

use std::io::{Read, Write};
use std::path::Path;

use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use mintframe_types::PlayDirection;

use crate::MediaError;
use crate::guard::Limits;
use crate::sequence::{Direction, Sequence, Tag};
use crate::sheet::Animation;
use crate::still::Rgba;

const HEADER_MAGIC: u16 = 0xA5E0;
const FRAME_MAGIC: u16 = 0xF1FA;
const CHUNK_LAYER: u16 = 0x2004;
const CHUNK_CEL: u16 = 0x2005;
const CHUNK_COLOR_PROFILE: u16 = 0x2007;
const CHUNK_TAGS: u16 = 0x2018;
const CHUNK_PALETTE: u16 = 0x2019;
const CHUNK_SLICE: u16 = 0x2022;
const CHUNK_OLD_PALETTE: u16 = 0x0004;

/// What is written: frames of one size, their durations, tags and a pivot.
#[derive(Debug)]
pub struct AseDocument<'a> {
    pub frames: &'a [Rgba],
    pub durations_ms: &'a [u32],
    pub animations: &'a [Animation],
    pub pivot: Option<(&'a str, [u32; 2])>,
    pub layer_name: &'a str,
}

struct Buf(Vec<u8>);

impl Buf {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i16(&mut self, v: i16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn zeros(&mut self, n: usize) {
        self.0.extend(std::iter::repeat_n(0, n));
    }
    fn string(&mut self, s: &str) {
        let b = s.as_bytes();
        let n = b.len().min(u16::MAX as usize);
        self.u16(n as u16);
        self.0.extend_from_slice(&b[..n]);
    }
}

fn chunk(kind: u16, body: Buf) -> Vec<u8> {
    let mut out = Buf(Vec::with_capacity(body.0.len() + 6));
    out.u32(body.0.len() as u32 + 6);
    out.u16(kind);
    out.0.extend_from_slice(&body.0);
    out.0
}

fn bad(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Image {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn too_big(what: &str) -> MediaError {
    bad(
        Path::new("<aseprite>"),
        format!("{what} is over what an .aseprite file can hold (65535)"),
    )
}

/// The `.aseprite` bytes of `doc` (32-bit RGBA).
pub fn write_aseprite(doc: &AseDocument<'_>) -> Result<Vec<u8>, MediaError> {
    let first = doc
        .frames
        .first()
        .ok_or_else(|| bad(Path::new("<aseprite>"), "no frames to write"))?;
    let (w, h) = (first.width, first.height);
    let n = u16::try_from(doc.frames.len()).map_err(|_| too_big("the frame count"))?;
    let (w16, h16) = (
        u16::try_from(w).map_err(|_| too_big("the width"))?,
        u16::try_from(h).map_err(|_| too_big("the height"))?,
    );
    let mut out = Buf(Vec::new());
    // Header; the file size is patched in at the end.
    out.u32(0);
    out.u16(HEADER_MAGIC);
    out.u16(n);
    out.u16(w16);
    out.u16(h16);
    out.u16(32);
    out.u32(1); // layer opacity is valid
    out.u16(doc.durations_ms.first().copied().unwrap_or(100).min(65535) as u16);
    out.u32(0);
    out.u32(0);
    out.u8(0); // transparent index (indexed sprites only)
    out.zeros(3);
    out.u16(1); // colours in the palette
    out.u8(1); // pixel width
    out.u8(1); // pixel height
    out.i16(0);
    out.i16(0);
    out.u16(16);
    out.u16(16);
    out.zeros(84);
    debug_assert_eq!(out.0.len(), 128);

    for (i, f) in doc.frames.iter().enumerate() {
        if (f.width, f.height) != (w, h) {
            return Err(bad(
                Path::new("<aseprite>"),
                format!("frame {i} is {}×{}, not {w}×{h}", f.width, f.height),
            ));
        }
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        if i == 0 {
            let mut b = Buf(Vec::new());
            b.u16(1); // sRGB
            b.u16(0);
            b.u32(0); // fixed gamma, unused without the flag
            b.zeros(8);
            chunks.push(chunk(CHUNK_COLOR_PROFILE, b));
            let mut b = Buf(Vec::new());
            b.u32(1);
            b.u32(0);
            b.u32(0);
            b.zeros(8);
            b.u16(0);
            b.0.extend_from_slice(&[0, 0, 0, 255]);
            chunks.push(chunk(CHUNK_PALETTE, b));
            let mut b = Buf(Vec::new());
            b.u16(3); // visible, editable
            b.u16(0); // a normal layer
            b.u16(0); // child level
            b.u16(0);
            b.u16(0);
            b.u16(0); // normal blend
            b.u8(255);
            b.zeros(3);
            b.string(doc.layer_name);
            chunks.push(chunk(CHUNK_LAYER, b));
            if !doc.animations.is_empty() {
                let mut b = Buf(Vec::new());
                b.u16(u16::try_from(doc.animations.len()).map_err(|_| too_big("tags"))?);
                b.zeros(8);
                for a in doc.animations {
                    b.u16(a.from.min(65535) as u16);
                    b.u16(a.to.min(65535) as u16);
                    b.u8(match a.direction {
                        PlayDirection::Forward => 0,
                        PlayDirection::Reverse => 1,
                        PlayDirection::PingPong => 2,
                    });
                    // 0 plays forever; 1 once.
                    b.u16(if a.looped { 0 } else { 1 });
                    b.zeros(6);
                    b.0.extend_from_slice(&[0, 0, 0]);
                    b.u8(0);
                    b.string(&a.name);
                }
                chunks.push(chunk(CHUNK_TAGS, b));
            }
            if let Some((name, [px, py])) = doc.pivot {
                let mut b = Buf(Vec::new());
                b.u32(1); // one key, valid from frame 0 on
                b.u32(2); // has a pivot
                b.u32(0);
                b.string(name);
                b.u32(0);
                b.i32(0);
                b.i32(0);
                b.u32(w);
                b.u32(h);
                b.i32(px as i32);
                b.i32(py as i32);
                chunks.push(chunk(CHUNK_SLICE, b));
            }
        }
        // The cel holds only the frame's box of pixels, at its place.
        let [bx, by, bw, bh] = crate::sheet::content_box_of(f);
        let mut b = Buf(Vec::new());
        b.u16(0); // layer 0
        b.i16(bx as i16);
        b.i16(by as i16);
        b.u8(255);
        b.u16(2); // compressed image
        b.i16(0); // z-index
        b.zeros(5);
        b.u16(bw as u16);
        b.u16(bh as u16);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        for row in by..by + bh {
            let s = ((row * w + bx) * 4) as usize;
            z.write_all(&f.data[s..s + (bw * 4) as usize])
                .map_err(|e| bad(Path::new("<aseprite>"), e.to_string()))?;
        }
        b.0.extend_from_slice(
            &z.finish()
                .map_err(|e| bad(Path::new("<aseprite>"), e.to_string()))?,
        );
        chunks.push(chunk(CHUNK_CEL, b));

        let body: usize = chunks.iter().map(Vec::len).sum();
        out.u32((16 + body) as u32);
        out.u16(FRAME_MAGIC);
        out.u16(chunks.len().min(0xFFFF) as u16);
        out.u16(doc.durations_ms.get(i).copied().unwrap_or(100).min(65535) as u16);
        out.zeros(2);
        out.u32(chunks.len() as u32);
        for c in chunks {
            out.0.extend_from_slice(&c);
        }
    }
    let size = out.0.len() as u32;
    out.0[..4].copy_from_slice(&size.to_le_bytes());
    Ok(out.0)
}

/// A bounds-checked little-endian reader over one file's bytes.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MediaError> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len());
        let end = end.ok_or_else(|| {
            bad(
                self.path,
                format!("is cut short: {n} bytes wanted at offset {}", self.at),
            )
        })?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, MediaError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, MediaError> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn i16(&mut self) -> Result<i16, MediaError> {
        Ok(self.u16()? as i16)
    }
    fn u32(&mut self) -> Result<u32, MediaError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn string(&mut self) -> Result<String, MediaError> {
        let n = self.u16()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

struct Layer {
    visible: bool,
    opacity: u8,
    group: bool,
    level: u16,
}

/// A cel as stored: its place, opacity and pixels (RGBA), or a link to another frame's cel.
enum Cel {
    Image {
        x: i32,
        y: i32,
        opacity: u8,
        image: Rgba,
    },
    Linked(usize),
}

/// Reads an `.aseprite` file into frames (visible layers composited), durations and tags.
pub fn read_aseprite(bytes: &[u8], path: &Path, limits: &Limits) -> Result<Sequence, MediaError> {
    let mut r = Reader {
        b: bytes,
        at: 0,
        path,
    };
    r.u32()?;
    if r.u16()? != HEADER_MAGIC {
        return Err(bad(path, "is not an .aseprite file (no A5E0 magic)"));
    }
    let frames = r.u16()? as usize;
    let (w, h) = (r.u16()? as u32, r.u16()? as u32);
    let depth = r.u16()?;
    if !matches!(depth, 8 | 16 | 32) {
        return Err(bad(path, format!("has a colour depth of {depth} bits")));
    }
    limits.check_frame(path, w, h)?;
    limits.check_frames(path, frames, w, h)?;
    if frames == 0 {
        return Err(bad(path, "has no frames"));
    }
    r.take(14)?;
    let transparent = r.u8()?;
    r.take(128 - 29)?;

    let mut layers: Vec<Layer> = Vec::new();
    let mut palette = vec![[0u8; 4]; 256];
    let mut tags = Vec::new();
    let mut cels: Vec<Vec<(usize, Cel)>> = Vec::with_capacity(frames);
    let mut durations = Vec::with_capacity(frames);
    // Cels may overlap and layers stack: what they decode to is held to the same budget as
    // the composited frames, so a small file of zlib bombs cannot claim gigabytes.
    let mut decoded: u64 = 0;
    for fi in 0..frames {
        let start = r.at;
        let size = r.u32()? as usize;
        if r.u16()? != FRAME_MAGIC {
            return Err(bad(path, format!("frame {fi} has no F1FA magic")));
        }
        let old = r.u16()? as usize;
        let duration = r.u16()?;
        r.take(2)?;
        let new = r.u32()? as usize;
        let count = if new == 0 { old } else { new };
        let end = start
            .checked_add(size)
            .filter(|e| *e <= bytes.len() && size >= 16)
            .ok_or_else(|| bad(path, format!("frame {fi} claims {size} bytes past the end")))?;
        let mut frame_cels = Vec::new();
        for _ in 0..count {
            if r.at >= end {
                break;
            }
            let cstart = r.at;
            let csize = r.u32()? as usize;
            let kind = r.u16()?;
            let cend = cstart
                .checked_add(csize)
                .filter(|e| *e <= end && csize >= 6)
                .ok_or_else(|| bad(path, format!("a chunk of frame {fi} runs past its frame")))?;
            let mut c = Reader {
                b: &bytes[..cend],
                at: r.at,
                path,
            };
            match kind {
                CHUNK_LAYER => {
                    let flags = c.u16()?;
                    let ty = c.u16()?;
                    let level = c.u16()?;
                    c.take(6)?;
                    let opacity = c.u8()?;
                    layers.push(Layer {
                        visible: flags & 1 != 0,
                        opacity,
                        group: ty == 1,
                        level,
                    });
                }
                CHUNK_CEL => {
                    let layer = c.u16()? as usize;
                    let (x, y) = (i32::from(c.i16()?), i32::from(c.i16()?));
                    let opacity = c.u8()?;
                    let ty = c.u16()?;
                    c.take(7)?;
                    let cel = match ty {
                        0 | 2 => {
                            let (cw, ch) = (c.u16()? as u32, c.u16()? as u32);
                            limits.check_frame(path, cw.max(1), ch.max(1))?;
                            let bpp = (depth / 8) as usize;
                            let want = cw as usize * ch as usize * bpp;
                            decoded += (cw as u64) * (ch as u64) * 4;
                            if decoded > limits.max_decoded_bytes {
                                return Err(MediaError::OverLimit {
                                    path: path.to_owned(),
                                    what: format!(
                                        "has cels that decode to more than {} MiB",
                                        limits.max_decoded_bytes >> 20
                                    ),
                                });
                            }
                            let raw = if ty == 0 {
                                c.take(want)?.to_vec()
                            } else {
                                let mut out = Vec::with_capacity(want);
                                ZlibDecoder::new(&bytes[c.at..cend])
                                    .take(want as u64)
                                    .read_to_end(&mut out)
                                    .map_err(|e| {
                                        bad(
                                            path,
                                            format!("a cel of frame {fi} does not inflate ({e})"),
                                        )
                                    })?;
                                if out.len() != want {
                                    return Err(bad(
                                        path,
                                        format!(
                                            "a cel of frame {fi} holds fewer pixels than it claims"
                                        ),
                                    ));
                                }
                                out
                            };
                            let data = to_rgba(&raw, depth, &palette, transparent);
                            Some(Cel::Image {
                                x,
                                y,
                                opacity,
                                image: Rgba {
                                    width: cw,
                                    height: ch,
                                    data,
                                },
                            })
                        }
                        1 => {
                            let link = c.u16()? as usize;
                            if link >= fi {
                                return Err(bad(
                                    path,
                                    format!(
                                        "frame {fi} links a cel to frame {link}, not an earlier one"
                                    ),
                                ));
                            }
                            Some(Cel::Linked(link))
                        }
                        // Tilemaps need their tileset; there are no tiles in a sheet.
                        _ => None,
                    };
                    if let Some(cel) = cel {
                        frame_cels.push((layer, cel));
                    }
                }
                CHUNK_PALETTE => {
                    let _size = c.u32()?;
                    let (from, to) = (c.u32()? as usize, c.u32()? as usize);
                    c.take(8)?;
                    for entry in palette.iter_mut().take(to.min(255) + 1).skip(from) {
                        let flags = c.u16()?;
                        let rgba = c.take(4)?;
                        *entry = [rgba[0], rgba[1], rgba[2], rgba[3]];
                        if flags & 1 != 0 {
                            c.string()?;
                        }
                    }
                }
                CHUNK_TAGS => {
                    let n = c.u16()?;
                    c.take(8)?;
                    for _ in 0..n {
                        let (from, to) = (c.u16()? as usize, c.u16()? as usize);
                        let dir = c.u8()?;
                        c.take(2 + 6 + 4)?;
                        let name = c.string()?;
                        if from > to || to >= frames {
                            return Err(bad(
                                path,
                                format!("tag {name:?} spans frames {from}..={to} of {frames}"),
                            ));
                        }
                        tags.push(Tag {
                            name,
                            from,
                            to,
                            direction: match dir {
                                1 => Direction::Reverse,
                                2 | 3 => Direction::PingPong,
                                _ => Direction::Forward,
                            },
                        });
                    }
                }
                // Old palettes, profiles, slices, user data: nothing a frame's pixels need.
                CHUNK_OLD_PALETTE | CHUNK_COLOR_PROFILE | CHUNK_SLICE => {}
                _ => {}
            }
            r.at = cend;
        }
        r.at = end;
        cels.push(frame_cels);
        durations.push((duration > 0).then_some(u32::from(duration)));
    }

    // Which layers show: visible, and every group above them visible too.
    let mut shown = Vec::with_capacity(layers.len());
    let mut stack: Vec<bool> = Vec::new();
    for l in &layers {
        stack.truncate(l.level as usize);
        let parents = stack.iter().all(|v| *v);
        shown.push(l.visible && parents && !l.group);
        if l.group {
            stack.push(l.visible);
        }
    }

    let mut out = Vec::with_capacity(frames);
    for fi in 0..frames {
        let mut img = Rgba {
            width: w,
            height: h,
            data: vec![0; (w * h * 4) as usize],
        };
        let mut list: Vec<(usize, &Cel)> = cels[fi].iter().map(|(l, c)| (*l, c)).collect();
        list.sort_by_key(|(l, _)| *l);
        for (layer, cel) in list {
            let Some(l) = layers.get(layer) else { continue };
            if !shown[layer] {
                continue;
            }
            let mut cel = cel;
            let mut hops = 0;
            while let Cel::Linked(to) = cel {
                hops += 1;
                match cels[*to].iter().find(|(ll, _)| *ll == layer) {
                    Some((_, c)) if hops < frames => cel = c,
                    _ => break,
                }
            }
            if let Cel::Image {
                x,
                y,
                opacity,
                image,
            } = cel
            {
                let alpha = u32::from(*opacity) * u32::from(l.opacity) / 255;
                over(&mut img, image, *x, *y, alpha);
            }
        }
        out.push(img);
    }
    Ok(Sequence {
        frames: out,
        durations_ms: durations,
        tags,
    })
}

fn to_rgba(raw: &[u8], depth: u16, palette: &[[u8; 4]], transparent: u8) -> Vec<u8> {
    match depth {
        32 => raw.to_vec(),
        16 => raw
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        _ => raw
            .iter()
            .flat_map(|&i| {
                if i == transparent {
                    [0, 0, 0, 0]
                } else {
                    palette[i as usize]
                }
            })
            .collect(),
    }
}

/// Straight-alpha "normal" blending of `src` at (x, y) with an extra opacity (0–255).
fn over(dst: &mut Rgba, src: &Rgba, x: i32, y: i32, opacity: u32) {
    for sy in 0..src.height as i32 {
        let ty = y + sy;
        if ty < 0 || ty >= dst.height as i32 {
            continue;
        }
        for sx in 0..src.width as i32 {
            let tx = x + sx;
            if tx < 0 || tx >= dst.width as i32 {
                continue;
            }
            let s = ((sy as u32 * src.width + sx as u32) * 4) as usize;
            let t = ((ty as u32 * dst.width + tx as u32) * 4) as usize;
            let sa = u32::from(src.data[s + 3]) * opacity / 255;
            if sa == 0 {
                continue;
            }
            let da = u32::from(dst.data[t + 3]);
            let oa = sa * 255 + da * (255 - sa);
            for k in 0..3 {
                let sc = u32::from(src.data[s + k]);
                let dc = u32::from(dst.data[t + k]);
                dst.data[t + k] = ((sc * sa * 255 + dc * da * (255 - sa)) / oa.max(1)) as u8;
            }
            dst.data[t + 3] = (oa / 255) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32, seed: u8) -> Rgba {
        let mut data = vec![0; (w * h * 4) as usize];
        for (i, px) in data.chunks_exact_mut(4).enumerate() {
            if (i as u32 % w) > 1 && (i as u32 / w) > 2 {
                px.copy_from_slice(&[seed, i as u8, 200, 255]);
            }
        }
        Rgba {
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn an_aseprite_file_reads_back_as_it_was_written() {
        let frames: Vec<Rgba> = (0..4).map(|i| frame(9, 7, i * 40)).collect();
        let anims = vec![Animation {
            name: "walk".into(),
            from: 1,
            to: 3,
            direction: PlayDirection::PingPong,
            looped: true,
        }];
        let bytes = write_aseprite(&AseDocument {
            frames: &frames,
            durations_ms: &[100, 120, 140, 160],
            animations: &anims,
            pivot: Some(("pivot", [4, 7])),
            layer_name: "sprite",
        })
        .expect("write");
        assert_eq!(
            u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize,
            bytes.len()
        );
        let seq = read_aseprite(&bytes, Path::new("t.aseprite"), &Limits::DEFAULT).expect("read");
        assert_eq!(seq.frames, frames);
        assert_eq!(
            seq.durations_ms,
            vec![Some(100), Some(120), Some(140), Some(160)]
        );
        assert_eq!(seq.tags.len(), 1);
        assert_eq!(seq.tags[0].name, "walk");
        assert_eq!((seq.tags[0].from, seq.tags[0].to), (1, 3));
        assert_eq!(seq.tags[0].direction, Direction::PingPong);
    }

    #[test]
    fn a_truncated_or_lying_aseprite_file_is_refused_by_name() {
        let frames = vec![frame(9, 7, 1)];
        let bytes = write_aseprite(&AseDocument {
            frames: &frames,
            durations_ms: &[100],
            animations: &[],
            pivot: None,
            layer_name: "l",
        })
        .expect("write");
        let p = Path::new("t.aseprite");
        for cut in [10, 130, bytes.len() - 3] {
            let e = read_aseprite(&bytes[..cut], p, &Limits::DEFAULT)
                .expect_err("cut")
                .to_string();
            assert!(e.contains("t.aseprite"), "{e}");
        }
        let mut huge = bytes.clone();
        huge[8..10].copy_from_slice(&60000u16.to_le_bytes());
        huge[10..12].copy_from_slice(&60000u16.to_le_bytes());
        let e = read_aseprite(&huge, p, &Limits::DEFAULT)
            .expect_err("huge")
            .to_string();
        assert!(e.contains("60000×60000"), "{e}");
    }
}
