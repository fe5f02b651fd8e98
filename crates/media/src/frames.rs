//! Animations in: whatever a creator hands the previewer becomes a list of equally sized RGBA
//! frames with their durations and named ranges (Aseprite's frame tags).
//!
//! Sources: a PNG (one frame, or a sheet cut by a frame size or by an Aseprite JSON beside it),
//! an Aseprite JSON (hash or array export), a folder of PNGs (a sequence, in name order), a GIF
//! (frames composited as a viewer shows them) and a video FFmpeg can decode.

use std::path::{Component, Path, PathBuf};

use crate::MediaError;
use crate::guard::{Format, Limits, Probe};
use crate::sequence::{Direction, Sequence, Tag};
use crate::still::{Rgba, read_png_rgba};

fn bad(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Image {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Beyond this many frames a source is refused rather than held in memory (a 10-minute video).
pub const MAX_FRAMES: usize = Limits::DEFAULT.max_frames;

/// Reads `path` as an animation. `frame_size` cuts a PNG sheet into cells, row by row; without
/// it a PNG with an Aseprite JSON of the same name beside it is cut by that JSON. What a file is
/// comes from its bytes; only an Aseprite JSON is known by its `.json` name.
pub fn load_sequence(path: &Path, frame_size: Option<[u32; 2]>) -> Result<Sequence, MediaError> {
    if path.is_dir() {
        return png_sequence(path);
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    load_sequence_as(path, &ext, frame_size)
}

/// [`load_sequence`] for a file whose name says nothing (a library file, stored by hash):
/// `kind` `json` reads an Aseprite JSON, anything else is sniffed from the bytes.
pub fn load_sequence_as(
    path: &Path,
    kind: &str,
    frame_size: Option<[u32; 2]>,
) -> Result<Sequence, MediaError> {
    let limits = Limits::DEFAULT;
    if kind == "json" {
        return aseprite_with_image(path, None);
    }
    let (format, _) = crate::guard::sniff_file(path, &limits)?;
    if format == Format::Png {
        let sheet = read_png_rgba(path)?;
        if let Some([w, h]) = frame_size {
            return grid(path, &sheet, w, h);
        }
        let json = path.with_extension("json");
        if json.is_file() {
            return aseprite_with_image(&json, Some(sheet));
        }
        return Ok(Sequence {
            frames: vec![sheet],
            durations_ms: vec![None],
            tags: Vec::new(),
        });
    }
    let seq = decode_as(path, format, &limits)?;
    match frame_size {
        Some([w, h]) if seq.frames.len() == 1 => grid(path, &seq.frames[0], w, h),
        _ => Ok(seq),
    }
}

/// Decodes media held in memory (PNG, GIF, WebP: what the Rust decoders read) under `limits`,
/// the same way files are: the format from the bytes, every size checked before allocation.
pub fn decode_bytes(bytes: &[u8], limits: &Limits) -> Result<Sequence, MediaError> {
    let here = Path::new("<memory>");
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(bad(here, "is over the file size limit"));
    }
    match Format::sniff(&bytes[..bytes.len().min(16)]) {
        Some(Format::Png) => Ok(Sequence {
            frames: vec![crate::still::decode_png_rgba(bytes, here, limits)?],
            durations_ms: vec![None],
            tags: Vec::new(),
        }),
        Some(Format::Gif) => gif_frames(bytes, here, limits),
        Some(Format::WebP) => webp_frames(std::io::Cursor::new(bytes), here, limits),
        Some(Format::Aseprite) => crate::aseprite::read_aseprite(bytes, here, limits),
        Some(other) => Err(MediaError::Refused {
            path: here.to_owned(),
            reason: format!("is {other}, which is decoded from files only (through FFmpeg)"),
        }),
        None => Err(MediaError::Refused {
            path: here.to_owned(),
            reason: "is not a PNG, GIF or WebP".into(),
        }),
    }
}

/// Decodes all of `path` under `limits`: a file passes only if every frame decodes. This is
/// what import admits and what `library check --deep` holds stored files to.
pub fn check_file(path: &Path, limits: &Limits) -> Result<Probe, MediaError> {
    let (format, size_bytes) = crate::guard::sniff_file(path, limits)?;
    let seq = decode_as(path, format, limits)?;
    Ok(Probe {
        format,
        width: seq.width(),
        height: seq.height(),
        frames: seq.frames.len(),
        size_bytes,
    })
}

/// Decodes every frame of a file already sniffed as `format`, under `limits`.
fn decode_as(path: &Path, format: Format, limits: &Limits) -> Result<Sequence, MediaError> {
    match format {
        Format::Png => Ok(Sequence {
            frames: vec![read_png_rgba(path)?],
            durations_ms: vec![None],
            tags: Vec::new(),
        }),
        Format::Gif => read_gif(path, limits),
        Format::WebP => read_webp(path, limits),
        Format::Aseprite => {
            let (mut file, _) = crate::guard::open_regular(path, limits)?;
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes)
                .map_err(|e| bad(path, e.to_string()))?;
            crate::aseprite::read_aseprite(&bytes, path, limits)
        }
        Format::Jpeg | Format::Mp4 | Format::Matroska => crate::video::decode_video(path),
    }
}

/// Cuts a sheet into `w`×`h` cells, left to right and top to bottom; a partial last row or column
/// is not a frame.
pub fn grid(path: &Path, sheet: &Rgba, w: u32, h: u32) -> Result<Sequence, MediaError> {
    if w == 0 || h == 0 || w > sheet.width || h > sheet.height {
        return Err(bad(
            path,
            format!(
                "frame size {w}×{h} does not fit the {}×{} sheet",
                sheet.width, sheet.height
            ),
        ));
    }
    let cols = sheet.width / w;
    let rects = (0..(sheet.height / h))
        .flat_map(|r| (0..cols).map(move |c| [c * w, r * h, w, h]))
        .collect::<Vec<_>>();
    let frames = rects
        .iter()
        .map(|r| crop_rgba(sheet, *r))
        .collect::<Vec<_>>();
    Ok(Sequence {
        durations_ms: vec![None; frames.len()],
        frames,
        tags: Vec::new(),
    })
}

pub(crate) fn crop_rgba(sheet: &Rgba, [x, y, w, h]: [u32; 4]) -> Rgba {
    let mut data = Vec::with_capacity((w * h * 4) as usize);
    for row in y..y + h {
        let start = ((row * sheet.width + x) * 4) as usize;
        data.extend_from_slice(&sheet.data[start..start + (w * 4) as usize]);
    }
    Rgba {
        width: w,
        height: h,
        data,
    }
}

fn png_sequence(dir: &Path) -> Result<Sequence, MediaError> {
    let mut files = std::fs::read_dir(dir)
        .map_err(|e| bad(dir, format!("cannot list the folder ({e})")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
        .collect::<Vec<_>>();
    files.sort_by_cached_key(|p| natural_key(p));
    if files.is_empty() {
        return Err(bad(dir, "the folder holds no PNG frames"));
    }
    if files.len() > MAX_FRAMES {
        return Err(bad(
            dir,
            format!(
                "{} frames is over the {MAX_FRAMES} a preview holds",
                files.len()
            ),
        ));
    }
    let mut frames = Vec::with_capacity(files.len());
    for f in &files {
        let img = read_png_rgba(f)?;
        if let Some(first) = frames.first().map(|f: &Rgba| (f.width, f.height))
            && (img.width, img.height) != first
        {
            return Err(bad(
                f,
                format!(
                    "is {}×{} but the sequence's first frame is {}×{}",
                    img.width, img.height, first.0, first.1
                ),
            ));
        }
        frames.push(img);
    }
    Ok(Sequence {
        durations_ms: vec![None; frames.len()],
        frames,
        tags: Vec::new(),
    })
}

/// `walk_2.png` before `walk_10.png`: digits compare as numbers.
fn natural_key(p: &Path) -> Vec<(String, u64)> {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut text = String::new();
    let mut digits = String::new();
    for ch in name.chars() {
        if ch.is_ascii_digit() {
            digits.push(ch);
        } else {
            if !digits.is_empty() {
                out.push((
                    std::mem::take(&mut text),
                    digits.parse().unwrap_or(u64::MAX),
                ));
                digits.clear();
            }
            text.push(ch);
        }
    }
    out.push((text, digits.parse().unwrap_or(0)));
    out
}

#[derive(serde::Deserialize)]
struct AseFrame {
    #[serde(default)]
    filename: Option<String>,
    frame: AseRect,
    #[serde(default)]
    duration: Option<u32>,
}

#[derive(serde::Deserialize, Clone, Copy)]
struct AseRect {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum AseFrames {
    Array(Vec<AseFrame>),
    // Aseprite's "hash" export keeps frames in insertion order, which serde_json preserves only
    // with `preserve_order`; the keys are collected and ordered by the frame number they end in.
    Hash(serde_json::Map<String, serde_json::Value>),
}

#[derive(serde::Deserialize)]
struct AseTag {
    name: String,
    from: usize,
    to: usize,
    #[serde(default)]
    direction: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AseMeta {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    frame_tags: Vec<AseTag>,
}

#[derive(serde::Deserialize)]
struct AseDoc {
    frames: AseFrames,
    #[serde(default)]
    meta: AseMeta,
}

/// A relative path from a JSON file that must stay inside the JSON's folder.
fn contained(base: &Path, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    if p.components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    Some(base.join(p))
}

fn aseprite_with_image(json: &Path, sheet: Option<Rgba>) -> Result<Sequence, MediaError> {
    let text = std::fs::read_to_string(json).map_err(|e| bad(json, e.to_string()))?;
    aseprite_text(json, &text, sheet)
}

/// Cuts `sheet` by an Aseprite JSON given as text (`json` names it in errors). What the file
/// says is checked against the sheet: every frame inside it, every tag inside the frames.
pub fn aseprite_sheet(json: &Path, text: &str, sheet: Rgba) -> Result<Sequence, MediaError> {
    aseprite_text(json, text, Some(sheet))
}

fn aseprite_text(json: &Path, text: &str, sheet: Option<Rgba>) -> Result<Sequence, MediaError> {
    let doc: AseDoc = serde_json::from_str(text)
        .map_err(|e| bad(json, format!("not an Aseprite sheet JSON ({e})")))?;
    let sheet = match sheet {
        Some(s) => s,
        None => {
            let rel = doc
                .meta
                .image
                .as_deref()
                .ok_or_else(|| bad(json, "meta.image does not name the sheet's PNG"))?;
            let base = json.parent().unwrap_or(Path::new("."));
            let img = contained(base, rel).ok_or_else(|| {
                bad(
                    json,
                    format!("meta.image {rel:?} leaves the JSON's folder; it must be a plain relative name"),
                )
            })?;
            read_png_rgba(&img)?
        }
    };
    let mut frames: Vec<AseFrame> = match doc.frames {
        AseFrames::Array(v) => v,
        AseFrames::Hash(map) => {
            let mut v = Vec::with_capacity(map.len());
            for (name, value) in map {
                let mut f: AseFrame = serde_json::from_value(value)
                    .map_err(|e| bad(json, format!("frame {name:?}: {e}")))?;
                f.filename = Some(name);
                v.push(f);
            }
            v.sort_by_key(|f| {
                let n = f.filename.as_deref().unwrap_or("");
                let digits: String = n
                    .trim_end_matches(|c: char| !c.is_ascii_digit())
                    .chars()
                    .rev()
                    .take_while(char::is_ascii_digit)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                digits.parse::<u64>().unwrap_or(u64::MAX)
            });
            v
        }
    };
    if frames.is_empty() {
        return Err(bad(json, "the JSON lists no frames"));
    }
    let first = frames[0].frame;
    // Each listed frame becomes a cropped copy: a JSON listing a million frames must meet the
    // limits before a million copies are made.
    Limits::DEFAULT.check_frames(json, frames.len(), first.w, first.h)?;
    let mut out = Vec::with_capacity(frames.len());
    let mut durations = Vec::with_capacity(frames.len());
    for (i, f) in frames.drain(..).enumerate() {
        let r = f.frame;
        if (r.w, r.h) != (first.w, first.h) {
            return Err(bad(
                json,
                format!(
                    "frame {i} is {}×{} but frame 0 is {}×{}; export with the same size for every frame",
                    r.w, r.h, first.w, first.h
                ),
            ));
        }
        if r.w == 0
            || r.h == 0
            || r.x.checked_add(r.w).is_none_or(|x| x > sheet.width)
            || r.y.checked_add(r.h).is_none_or(|y| y > sheet.height)
        {
            return Err(bad(
                json,
                format!(
                    "frame {i} ({},{} {}×{}) lies outside the {}×{} sheet",
                    r.x, r.y, r.w, r.h, sheet.width, sheet.height
                ),
            ));
        }
        out.push(crop_rgba(&sheet, [r.x, r.y, r.w, r.h]));
        durations.push(f.duration.filter(|d| *d > 0));
    }
    let mut tags = Vec::new();
    for t in doc.meta.frame_tags {
        if t.from > t.to || t.to >= out.len() {
            return Err(bad(
                json,
                format!(
                    "tag {:?} spans frames {}..={} but there are {}",
                    t.name,
                    t.from,
                    t.to,
                    out.len()
                ),
            ));
        }
        let direction = match t.direction.as_deref().unwrap_or("forward") {
            "reverse" => Direction::Reverse,
            "pingpong" | "pingpong_reverse" => Direction::PingPong,
            _ => Direction::Forward,
        };
        tags.push(Tag {
            name: t.name,
            from: t.from,
            to: t.to,
            direction,
        });
    }
    Ok(Sequence {
        frames: out,
        durations_ms: durations,
        tags,
    })
}

fn read_gif(path: &Path, limits: &Limits) -> Result<Sequence, MediaError> {
    let (file, _) = crate::guard::open_regular(path, limits)?;
    gif_frames(std::io::BufReader::new(file), path, limits)
}

/// Every frame of a GIF, composited as a viewer shows it; `path` names the source in errors.
fn gif_frames(
    reader: impl std::io::Read,
    path: &Path,
    limits: &Limits,
) -> Result<Sequence, MediaError> {
    let mut opts = gif::DecodeOptions::new();
    opts.set_color_output(gif::ColorOutput::RGBA);
    // The decoder's own cap on one frame's buffer, for frames that claim more than the screen.
    opts.set_memory_limit(gif::MemoryLimit::Bytes(
        std::num::NonZeroU64::new(limits.max_pixels * 4).unwrap_or(std::num::NonZeroU64::MIN),
    ));
    let mut dec = opts
        .read_info(reader)
        .map_err(|e| bad(path, format!("not a readable GIF ({e})")))?;
    let (w, h) = (u32::from(dec.width()), u32::from(dec.height()));
    limits.check_frame(path, w, h)?;
    let mut canvas = vec![0u8; (w * h * 4) as usize];
    let mut frames = Vec::new();
    let mut durations = Vec::new();
    while let Some(f) = dec.read_next_frame().map_err(|e| {
        bad(
            path,
            format!("the GIF's frame {} is damaged ({e})", frames.len()),
        )
    })? {
        limits.check_frames(path, frames.len() + 1, w, h)?;
        let before = canvas.clone();
        let (fx, fy, fw, fh) = (
            u32::from(f.left),
            u32::from(f.top),
            u32::from(f.width),
            u32::from(f.height),
        );
        for y in 0..fh {
            for x in 0..fw {
                let (cx, cy) = (fx + x, fy + y);
                if cx >= w || cy >= h {
                    continue;
                }
                let s = ((y * fw + x) * 4) as usize;
                let px = &f.buffer[s..s + 4];
                // Transparent pixels in a GIF frame leave what is under them.
                if px[3] == 0 {
                    continue;
                }
                let d = ((cy * w + cx) * 4) as usize;
                canvas[d..d + 4].copy_from_slice(px);
            }
        }
        frames.push(Rgba {
            width: w,
            height: h,
            data: canvas.clone(),
        });
        // Browsers show delays under 2 cs as 10 cs; so does this.
        let cs = if f.delay < 2 { 10 } else { u32::from(f.delay) };
        durations.push(Some(cs * 10));
        match f.dispose {
            gif::DisposalMethod::Background => {
                for y in fy..(fy + fh).min(h) {
                    for x in fx..(fx + fw).min(w) {
                        let d = ((y * w + x) * 4) as usize;
                        canvas[d..d + 4].copy_from_slice(&[0, 0, 0, 0]);
                    }
                }
            }
            gif::DisposalMethod::Previous => canvas = before,
            _ => {}
        }
    }
    if frames.is_empty() {
        return Err(bad(path, "the GIF holds no frames"));
    }
    Ok(Sequence {
        frames,
        durations_ms: durations,
        tags: Vec::new(),
    })
}

/// The canvas size a WebP's first chunk claims (VP8X, VP8L or VP8), read before any decoder
/// runs so a lying header meets the limits, not the allocator.
fn webp_claimed_size(head: &[u8]) -> Option<(u32, u32)> {
    let chunk = head.get(12..16)?;
    let p = head.get(20..)?;
    let le24 = |b: &[u8]| u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
    match chunk {
        b"VP8X" if p.len() >= 10 => Some((le24(&p[4..7]) + 1, le24(&p[7..10]) + 1)),
        b"VP8L" if p.len() >= 5 && p[0] == 0x2f => {
            let bits = u32::from_le_bytes([p[1], p[2], p[3], p[4]]);
            Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
        }
        b"VP8 " if p.len() >= 10 => Some((
            u32::from(u16::from_le_bytes([p[6], p[7]]) & 0x3fff),
            u32::from(u16::from_le_bytes([p[8], p[9]]) & 0x3fff),
        )),
        _ => None,
    }
}

fn read_webp(path: &Path, limits: &Limits) -> Result<Sequence, MediaError> {
    let (file, _) = crate::guard::open_regular(path, limits)?;
    webp_frames(std::io::BufReader::new(file), path, limits)
}

/// Every frame of a WebP (a still is one frame); `path` names the source in errors.
fn webp_frames<R: std::io::BufRead + std::io::Seek>(
    mut reader: R,
    path: &Path,
    limits: &Limits,
) -> Result<Sequence, MediaError> {
    let mut head = Vec::with_capacity(32);
    std::io::Read::read_to_end(&mut std::io::Read::take(&mut reader, 32), &mut head)
        .map_err(|e| bad(path, e.to_string()))?;
    if let Some((w, h)) = webp_claimed_size(&head) {
        limits.check_frame(path, w, h)?;
    }
    std::io::Seek::rewind(&mut reader).map_err(|e| bad(path, e.to_string()))?;
    let mut dec = image_webp::WebPDecoder::new(reader)
        .map_err(|e| bad(path, format!("not a readable WebP ({e})")))?;
    let (w, h) = dec.dimensions();
    limits.check_frame(path, w, h)?;
    let animated = dec.is_animated();
    let count = if animated {
        dec.num_frames() as usize
    } else {
        1
    };
    limits.check_frames(path, count, w, h)?;
    dec.set_memory_limit(usize::try_from(limits.max_pixels * 4).unwrap_or(usize::MAX));
    let size = dec
        .output_buffer_size()
        .ok_or_else(|| bad(path, "the WebP is too large to decode"))?;
    let alpha = dec.has_alpha();
    let to_rgba = |buf: &[u8]| -> Vec<u8> {
        if alpha {
            buf.to_vec()
        } else {
            buf.chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect()
        }
    };
    let mut buf = vec![0u8; size];
    let mut frames = Vec::with_capacity(count);
    let mut durations = Vec::with_capacity(count);
    if !animated {
        dec.read_image(&mut buf)
            .map_err(|e| bad(path, format!("the WebP's image data is damaged ({e})")))?;
        frames.push(Rgba {
            width: w,
            height: h,
            data: to_rgba(&buf),
        });
        durations.push(None);
    } else {
        for i in 0..count {
            let ms = dec
                .read_frame(&mut buf)
                .map_err(|e| bad(path, format!("the WebP's frame {i} is damaged ({e})")))?;
            frames.push(Rgba {
                width: w,
                height: h,
                data: to_rgba(&buf),
            });
            durations.push(Some(if ms == 0 { 100 } else { ms }));
        }
    }
    Ok(Sequence {
        frames,
        durations_ms: durations,
        tags: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::still::{encode_gif, encode_png_rgba};

    fn solid(w: u32, h: u32, px: [u8; 4]) -> Rgba {
        Rgba {
            width: w,
            height: h,
            data: px.repeat((w * h) as usize),
        }
    }

    fn sheet_2x1() -> Rgba {
        // Two 2×2 cells: red, then blue.
        let mut data = Vec::new();
        for _ in 0..2 {
            data.extend([255, 0, 0, 255].repeat(2));
            data.extend([0, 0, 255, 255].repeat(2));
        }
        Rgba {
            width: 4,
            height: 2,
            data,
        }
    }

    #[test]
    fn a_sheet_is_cut_by_frame_size() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("walk.png");
        std::fs::write(&p, encode_png_rgba(&sheet_2x1()).expect("png")).expect("write");
        let s = load_sequence(&p, Some([2, 2])).expect("load");
        assert_eq!(s.frames.len(), 2);
        assert_eq!(s.frames[0], solid(2, 2, [255, 0, 0, 255]));
        assert_eq!(s.frames[1], solid(2, 2, [0, 0, 255, 255]));
        let e = load_sequence(&p, Some([5, 2]))
            .expect_err("too wide")
            .to_string();
        assert!(e.contains("does not fit the 4×2 sheet"), "{e}");
    }

    #[test]
    fn an_aseprite_hash_json_beside_the_png_gives_frames_durations_and_tags() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("walk.png");
        std::fs::write(&p, encode_png_rgba(&sheet_2x1()).expect("png")).expect("write");
        // Keys out of order on purpose: the frame number decides.
        let json = r#"{"frames":{
            "walk 1.aseprite":{"frame":{"x":2,"y":0,"w":2,"h":2},"duration":200},
            "walk 0.aseprite":{"frame":{"x":0,"y":0,"w":2,"h":2},"duration":100}},
          "meta":{"image":"walk.png","frameTags":[{"name":"idle","from":0,"to":0,"direction":"forward"},
                                                  {"name":"step","from":0,"to":1,"direction":"pingpong"}]}}"#;
        std::fs::write(dir.path().join("walk.json"), json).expect("json");
        for src in [p.clone(), dir.path().join("walk.json")] {
            let s = load_sequence(&src, None).expect("load");
            assert_eq!(s.frames[0], solid(2, 2, [255, 0, 0, 255]));
            assert_eq!(s.frames[1], solid(2, 2, [0, 0, 255, 255]));
            assert_eq!(s.durations_ms, vec![Some(100), Some(200)]);
            assert_eq!(s.tags.len(), 2);
            assert_eq!(s.tags[1].direction, Direction::PingPong);
        }
    }

    #[test]
    fn aseprite_json_may_not_reach_outside_its_folder_or_past_its_frames() {
        let dir = tempfile::tempdir().expect("tmp");
        let j = dir.path().join("a.json");
        std::fs::write(
            &j,
            r#"{"frames":[{"frame":{"x":0,"y":0,"w":2,"h":2}}],"meta":{"image":"../etc/x.png"}}"#,
        )
        .expect("json");
        let e = load_sequence(&j, None).expect_err("escape").to_string();
        assert!(e.contains("leaves the JSON's folder"), "{e}");

        std::fs::write(
            dir.path().join("b.png"),
            encode_png_rgba(&sheet_2x1()).expect("png"),
        )
        .expect("png");
        std::fs::write(
            dir.path().join("b.json"),
            r#"{"frames":[{"frame":{"x":0,"y":0,"w":2,"h":2}}],"meta":{"image":"b.png","frameTags":[{"name":"x","from":0,"to":3}]}}"#,
        )
        .expect("json");
        let e = load_sequence(&dir.path().join("b.json"), None)
            .expect_err("tag")
            .to_string();
        assert!(e.contains("spans frames 0..=3 but there are 1"), "{e}");
    }

    #[test]
    fn a_folder_of_pngs_plays_in_natural_order_and_sizes_must_agree() {
        let dir = tempfile::tempdir().expect("tmp");
        for (i, c) in [(10, 30u8), (2, 20), (1, 10)] {
            let img = solid(1, 1, [c, 0, 0, 255]);
            std::fs::write(
                dir.path().join(format!("f_{i}.png")),
                encode_png_rgba(&img).expect("png"),
            )
            .expect("write");
        }
        let s = load_sequence(dir.path(), None).expect("load");
        let reds: Vec<u8> = s.frames.iter().map(|f| f.data[0]).collect();
        assert_eq!(reds, vec![10, 20, 30]);
        std::fs::write(
            dir.path().join("f_99.png"),
            encode_png_rgba(&solid(2, 1, [0; 4])).expect("png"),
        )
        .expect("write");
        let e = load_sequence(dir.path(), None)
            .expect_err("size")
            .to_string();
        assert!(
            e.contains("f_99.png") && e.contains("first frame is 1×1"),
            "{e}"
        );
    }

    #[test]
    fn a_gif_decodes_to_its_frames_and_delays() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("a.gif");
        let frames = vec![solid(3, 2, [255, 0, 0, 255]), solid(3, 2, [0, 255, 0, 255])];
        std::fs::write(&p, encode_gif(&frames, 10).expect("gif")).expect("write");
        let s = load_sequence(&p, None).expect("load");
        assert_eq!(s.frames, frames);
        assert_eq!(s.durations_ms, vec![Some(100), Some(100)]);

        std::fs::write(&p, b"GIF89a\x01").expect("write");
        let e = load_sequence(&p, None).expect_err("bad").to_string();
        assert!(e.contains("a.gif"), "{e}");
    }
}
