//! Still images in and out as straight-alpha RGBA8: what the renderer and exports work on.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use crate::MediaError;
use crate::guard::Limits;

/// Straight-alpha RGBA8, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgba {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

fn bad(path: &Path, reason: impl Into<String>) -> MediaError {
    MediaError::Image {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Decodes a PNG of any colour type and bit depth to RGBA8 (palette and grey expanded, 16-bit
/// reduced). Only the first frame of an APNG.
/// Decodes under [`Limits::DEFAULT`]: the size the header claims is checked before the image
/// is allocated.
pub fn read_png_rgba(path: &Path) -> Result<Rgba, MediaError> {
    let limits = Limits::DEFAULT;
    let (mut file, _) = crate::guard::open_regular(path, &limits)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| bad(path, e.to_string()))?;
    decode_png_rgba(&bytes, path, &limits)
}

/// Decodes PNG bytes to RGBA under `limits`; `path` names the source in errors.
pub fn decode_png_rgba(bytes: &[u8], path: &Path, limits: &Limits) -> Result<Rgba, MediaError> {
    let mut dec = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: usize::try_from(limits.max_pixels * 8).unwrap_or(usize::MAX),
        },
    );
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec
        .read_info()
        .map_err(|e| bad(path, format!("not a readable PNG ({e})")))?;
    let (w, h) = (reader.info().width, reader.info().height);
    limits.check_frame(path, w, h)?;
    decode_frame(&mut reader).map_err(|reason| bad(path, reason))
}

fn decode_frame(reader: &mut png::Reader<Cursor<&[u8]>>) -> Result<Rgba, String> {
    let size = reader
        .output_buffer_size()
        .ok_or("the PNG is too large to decode")?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("the PNG's image data is damaged ({e})"))?;
    buf.truncate(info.buffer_size());
    let n = (info.width as usize) * (info.height as usize);
    let data = match info.color_type {
        png::ColorType::Rgba => buf,
        png::ColorType::Rgb => buf
            .chunks(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        png::ColorType::GrayscaleAlpha => buf
            .chunks(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        png::ColorType::Indexed => return Err("palette was not expanded".into()),
    };
    if data.len() != n * 4 {
        return Err(format!(
            "decoded {} bytes for {}×{} pixels",
            data.len(),
            info.width,
            info.height
        ));
    }
    Ok(Rgba {
        width: info.width,
        height: info.height,
        data,
    })
}

/// Encodes RGBA8 as a PNG.
pub fn encode_png_rgba(img: &Rgba) -> Result<Vec<u8>, MediaError> {
    let err = |e: png::EncodingError| bad(&PathBuf::from("<memory>"), e.to_string());
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, img.width, img.height);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(err)?;
        w.write_image_data(&img.data).map_err(err)?;
        w.finish().map_err(err)?;
    }
    Ok(out)
}

/// Encodes equally sized frames as a looping GIF at `fps` (GIF counts in hundredths of a
/// second, so 12 fps plays at 8 cs a frame) with **one palette for the whole clip**, so a colour
/// is the same index in every frame and nothing flickers: the clip's own colours when it has
/// at most 255 (exact), else 255 found by NeuQuant over pixels of every frame; the 256th entry
/// is transparency (alpha under 128), and each frame replaces the last.
pub fn encode_gif(frames: &[Rgba], fps: u32) -> Result<Vec<u8>, MediaError> {
    let here = PathBuf::from("<gif>");
    let first = frames
        .first()
        .ok_or_else(|| bad(&here, "an animation needs at least one frame"))?;
    if !(1..=50).contains(&fps) {
        return Err(bad(
            &here,
            format!("{fps} fps cannot be shown: GIF plays 1 to 50 frames per second"),
        ));
    }
    let (w, h) = (first.width, first.height);
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(bad(&here, format!("{w}×{h} is over GIF's 65535 px")));
    };
    for (i, f) in frames.iter().enumerate() {
        if (f.width, f.height) != (w, h) || f.data.len() != (w * h * 4) as usize {
            return Err(bad(
                &here,
                format!(
                    "frame {i} is {}×{} but the first is {w}×{h}",
                    f.width, f.height
                ),
            ));
        }
    }
    let palette = ClipPalette::of(frames);
    // GIF counts in hundredths of a second: each frame ends where the exact clock says
    // (12, 13, 12, 13 … at 8 fps), so a clip keeps its length and plays in step with its
    // MP4 rather than drifting by a rounding error every frame.
    let end_cs = |k: u64| ((k * 100 + u64::from(fps) / 2) / u64::from(fps)) as u16;
    let err = |e: gif::EncodingError| bad(&here, e.to_string());
    let mut out = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut out, w16, h16, &palette.rgb).map_err(err)?;
        enc.set_repeat(gif::Repeat::Infinite).map_err(err)?;
        for (k, f) in frames.iter().enumerate() {
            let delay = end_cs(k as u64 + 1) - end_cs(k as u64);
            let indices: Vec<u8> = f.data.chunks_exact(4).map(|p| palette.index(p)).collect();
            let frame = gif::Frame {
                width: w16,
                height: h16,
                delay,
                transparent: Some(TRANSPARENT),
                dispose: gif::DisposalMethod::Background,
                buffer: std::borrow::Cow::Owned(indices),
                ..gif::Frame::default()
            };
            enc.write_frame(&frame).map_err(err)?;
        }
    }
    Ok(out)
}

/// The GIF index that means "transparent".
const TRANSPARENT: u8 = 255;

/// One palette for a whole clip.
struct ClipPalette {
    /// 256 RGB entries, the last one transparency's.
    rgb: Vec<u8>,
    exact: Option<std::collections::HashMap<[u8; 3], u8>>,
    quant: Option<color_quant::NeuQuant>,
}

impl ClipPalette {
    fn of(frames: &[Rgba]) -> ClipPalette {
        let mut seen: std::collections::HashMap<[u8; 3], u8> = std::collections::HashMap::new();
        let mut few = true;
        'all: for f in frames {
            for p in f.data.chunks_exact(4) {
                if p[3] < 128 {
                    continue;
                }
                let c = [p[0], p[1], p[2]];
                if !seen.contains_key(&c) {
                    if seen.len() == usize::from(TRANSPARENT) {
                        few = false;
                        break 'all;
                    }
                    let i = seen.len() as u8;
                    seen.insert(c, i);
                }
            }
        }
        let mut rgb = vec![0u8; 256 * 3];
        if few {
            for (c, i) in &seen {
                rgb[usize::from(*i) * 3..][..3].copy_from_slice(c);
            }
            return ClipPalette {
                rgb,
                exact: Some(seen),
                quant: None,
            };
        }
        // NeuQuant over at most about a million opaque pixels taken evenly from every frame.
        let total: usize = frames.iter().map(|f| f.data.len() / 4).sum();
        let step = (total / 1_000_000).max(1);
        let mut sample = Vec::with_capacity(total / step * 4 + 4);
        let mut k = 0usize;
        for f in frames {
            for p in f.data.chunks_exact(4) {
                if p[3] >= 128 && k.is_multiple_of(step) {
                    sample.extend_from_slice(&[p[0], p[1], p[2], 255]);
                }
                k += 1;
            }
        }
        let nq = color_quant::NeuQuant::new(10, usize::from(TRANSPARENT), &sample);
        let map = nq.color_map_rgb();
        rgb[..map.len()].copy_from_slice(&map);
        ClipPalette {
            rgb,
            exact: None,
            quant: Some(nq),
        }
    }

    fn index(&self, p: &[u8]) -> u8 {
        if p[3] < 128 {
            return TRANSPARENT;
        }
        match (&self.exact, &self.quant) {
            (Some(m), _) => m.get(&[p[0], p[1], p[2]]).copied().unwrap_or(0),
            (None, Some(nq)) => nq.index_of(&[p[0], p[1], p[2], 255]) as u8,
            (None, None) => 0,
        }
    }
}

/// Scales and centre-crops `img` to exactly `width`×`height` (the scale that covers the target,
/// the middle kept), resampled with a triangle filter widened by the scale factor so a large
/// downscale averages every source pixel instead of skipping most of them. Premultiplied while
/// filtering, so transparent pixels' colours do not bleed into the edges.
pub fn resize_cover(img: &Rgba, width: u32, height: u32) -> Rgba {
    let (sw, sh) = (img.width as usize, img.height as usize);
    let (dw, dh) = (width as usize, height as usize);
    if sw == 0 || sh == 0 || dw == 0 || dh == 0 {
        return Rgba {
            width,
            height,
            data: vec![0; dw * dh * 4],
        };
    }
    let scale = (dw as f64 / sw as f64).max(dh as f64 / sh as f64);
    // The source window that maps onto the target, centred.
    let (cw, ch) = (dw as f64 / scale, dh as f64 / scale);
    let (x0, y0) = ((sw as f64 - cw) / 2.0, (sh as f64 - ch) / 2.0);
    let pre: Vec<f32> = img
        .data
        .chunks_exact(4)
        .flat_map(|p| {
            let a = f32::from(p[3]) / 255.0;
            [
                f32::from(p[0]) * a,
                f32::from(p[1]) * a,
                f32::from(p[2]) * a,
                f32::from(p[3]),
            ]
        })
        .collect();
    let weights = |n_out: usize, n_in: usize, start: f64, step: f64| -> Vec<Vec<(usize, f32)>> {
        let support = step.max(1.0);
        (0..n_out)
            .map(|o| {
                let centre = start + (o as f64 + 0.5) * step;
                let lo = ((centre - support).floor().max(0.0)) as usize;
                let hi = ((centre + support).ceil() as usize).min(n_in);
                let mut w: Vec<(usize, f32)> = (lo..hi)
                    .map(|i| {
                        let d = ((i as f64 + 0.5 - centre) / support).abs();
                        (i, (1.0 - d).max(0.0) as f32)
                    })
                    .filter(|(_, w)| *w > 0.0)
                    .collect();
                if w.is_empty() {
                    w.push(((centre.floor().max(0.0) as usize).min(n_in - 1), 1.0));
                }
                let sum: f32 = w.iter().map(|(_, w)| w).sum();
                w.iter_mut().for_each(|(_, x)| *x /= sum);
                w
            })
            .collect()
    };
    let wx = weights(dw, sw, x0, 1.0 / scale);
    let wy = weights(dh, sh, y0, 1.0 / scale);
    // Rows first (source height × target width), then columns.
    let mut mid = vec![0f32; sh * dw * 4];
    for y in 0..sh {
        for (x, taps) in wx.iter().enumerate() {
            let mut acc = [0f32; 4];
            for &(i, w) in taps {
                let p = &pre[(y * sw + i) * 4..][..4];
                for c in 0..4 {
                    acc[c] += p[c] * w;
                }
            }
            mid[(y * dw + x) * 4..][..4].copy_from_slice(&acc);
        }
    }
    let mut data = vec![0u8; dw * dh * 4];
    for (y, taps) in wy.iter().enumerate() {
        for x in 0..dw {
            let mut acc = [0f32; 4];
            for &(i, w) in taps {
                let p = &mid[(i * dw + x) * 4..][..4];
                for c in 0..4 {
                    acc[c] += p[c] * w;
                }
            }
            let a = acc[3];
            let out = &mut data[(y * dw + x) * 4..][..4];
            for c in 0..3 {
                let v = if a > 0.0 { acc[c] * 255.0 / a } else { 0.0 };
                out[c] = v.round().clamp(0.0, 255.0) as u8;
            }
            out[3] = a.round().clamp(0.0, 255.0) as u8;
        }
    }
    Rgba {
        width,
        height,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_gif(bytes: &[u8]) -> (bool, Vec<(bool, u16, Vec<u8>)>) {
        let mut o = gif::DecodeOptions::new();
        o.set_color_output(gif::ColorOutput::RGBA);
        let mut d = o.read_info(bytes).expect("gif");
        let global = d.global_palette().is_some();
        let mut frames = Vec::new();
        while let Some(f) = d.read_next_frame().expect("frame") {
            frames.push((f.palette.is_some(), f.delay, f.buffer.to_vec()));
        }
        (global, frames)
    }

    /// 8 fps is 12.5 hundredths a frame: the delays alternate so 24 frames last 3 s exactly.
    #[test]
    fn gif_delays_keep_the_clip_length_exact_when_a_frame_is_not_whole_hundredths() {
        let frames = vec![
            Rgba {
                width: 1,
                height: 1,
                data: vec![1, 2, 3, 255],
            };
            24
        ];
        let (_, f) = decode_gif(&encode_gif(&frames, 8).expect("gif"));
        let delays: Vec<u16> = f.iter().map(|x| x.1).collect();
        assert_eq!(delays.iter().map(|d| u32::from(*d)).sum::<u32>(), 300);
        assert!(delays.iter().all(|d| *d == 12 || *d == 13), "{delays:?}");
        let (_, f) = decode_gif(&encode_gif(&frames[..3], 3).expect("gif"));
        let delays: Vec<u16> = f.iter().map(|x| x.1).collect();
        assert_eq!(delays, vec![33, 34, 33]);
    }

    /// A clip of thousands of colours gets one palette (in the header, none per frame), so a
    /// colour maps to the same entry in every frame; a clip of a few keeps them exactly, and
    /// transparency survives.
    #[test]
    fn a_gif_clip_has_one_palette_and_keeps_few_colours_and_transparency_exactly() {
        let many: Vec<Rgba> = (0..4u32)
            .map(|k| Rgba {
                width: 64,
                height: 64,
                data: (0..64 * 64u32)
                    .flat_map(|i| [(i % 64 * 4) as u8, (i / 64 * 4) as u8, (k * 60) as u8, 255])
                    .collect(),
            })
            .collect();
        let (global, frames) = decode_gif(&encode_gif(&many, 10).expect("gif"));
        assert!(global, "no global palette");
        assert_eq!(frames.len(), 4);
        assert!(
            frames
                .iter()
                .all(|(local, delay, _)| !local && *delay == 10)
        );
        // A pixel the same in two frames decodes the same in both.
        let mut same = many[0].clone();
        same.data[..4].copy_from_slice(&[10, 20, 30, 255]);
        let mut other = many[1].clone();
        other.data[..4].copy_from_slice(&[10, 20, 30, 255]);
        let (_, f) = decode_gif(&encode_gif(&[same, other], 10).expect("gif"));
        assert_eq!(f[0].2[..4], f[1].2[..4]);

        let few = vec![
            Rgba {
                width: 2,
                height: 1,
                data: vec![255, 0, 0, 255, 0, 0, 0, 0],
            },
            Rgba {
                width: 2,
                height: 1,
                data: vec![0, 0, 0, 0, 12, 34, 56, 255],
            },
        ];
        let (_, f) = decode_gif(&encode_gif(&few, 5).expect("gif"));
        assert_eq!(f[0].2[..4], [255, 0, 0, 255]);
        assert_eq!(f[0].2[7], 0, "transparent");
        assert_eq!(f[1].2[3], 0, "transparent in the next frame too");
        assert_eq!(f[1].2[4..8], [12, 34, 56, 255]);
    }

    #[test]
    fn rgba_round_trips_and_rgb_gains_opaque_alpha() {
        let img = Rgba {
            width: 2,
            height: 1,
            data: vec![1, 2, 3, 4, 250, 251, 252, 0],
        };
        let bytes = encode_png_rgba(&img).expect("encode");
        let l = Limits::DEFAULT;
        let p = Path::new("m.png");
        assert_eq!(decode_png_rgba(&bytes, p, &l).expect("decode"), img);

        let mut rgb = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut rgb, 1, 1);
            enc.set_color(png::ColorType::Rgb);
            let mut w = enc.write_header().expect("header");
            w.write_image_data(&[9, 8, 7]).expect("data");
        }
        assert_eq!(
            decode_png_rgba(&rgb, p, &l).expect("decode").data,
            vec![9, 8, 7, 255]
        );
    }

    #[test]
    fn a_file_that_is_not_a_png_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("sprite.png");
        std::fs::write(&p, b"GIF89a").expect("write");
        let e = read_png_rgba(&p).expect_err("not png").to_string();
        assert!(
            e.contains("sprite.png") && e.contains("not a readable PNG"),
            "{e}"
        );
    }

    #[test]
    fn resize_cover_keeps_a_flat_colour_and_crops_the_middle() {
        // 4×2: left half red, right half blue, to 2×2: the middle two columns survive.
        let mut data = Vec::new();
        for _ in 0..2 {
            for x in 0..4 {
                data.extend(if x < 2 {
                    [255, 0, 0, 255]
                } else {
                    [0, 0, 255, 255]
                });
            }
        }
        let img = Rgba {
            width: 4,
            height: 2,
            data,
        };
        let out = super::resize_cover(&img, 2, 2);
        assert_eq!(&out.data[0..4], &[255, 0, 0, 255]);
        assert_eq!(&out.data[4..8], &[0, 0, 255, 255]);
        // A big flat image down to 3×5 stays exactly that colour.
        let flat = Rgba {
            width: 97,
            height: 61,
            data: [10u8, 200, 30, 255].repeat(97 * 61),
        };
        let small = super::resize_cover(&flat, 3, 5);
        assert!(small.data.chunks(4).all(|p| p == [10, 200, 30, 255]));
        let big = super::resize_cover(&flat, 130, 140);
        assert_eq!((big.width, big.height), (130, 140));
        assert!(big.data.chunks(4).all(|p| p == [10, 200, 30, 255]));
    }
}
