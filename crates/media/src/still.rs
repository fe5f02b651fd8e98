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

/// Encodes equally sized opaque frames as a looping GIF at `fps` (GIF counts in hundredths of a
/// second, so 12 fps plays at 8 cs a frame). Frames of up to 256 colours keep them exactly;
/// more are quantised per frame (NeuQuant).
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
    let delay = ((100 + fps / 2) / fps) as u16;
    let err = |e: gif::EncodingError| bad(&here, e.to_string());
    let mut out = Vec::new();
    {
        let mut enc = gif::Encoder::new(&mut out, w16, h16, &[]).map_err(err)?;
        enc.set_repeat(gif::Repeat::Infinite).map_err(err)?;
        for (i, f) in frames.iter().enumerate() {
            if (f.width, f.height) != (w, h) {
                return Err(bad(
                    &here,
                    format!(
                        "frame {i} is {}×{} but the first is {w}×{h}",
                        f.width, f.height
                    ),
                ));
            }
            let mut px = f.data.clone();
            let mut frame = gif::Frame::from_rgba_speed(w16, h16, &mut px, 10);
            frame.delay = delay;
            enc.write_frame(&frame).map_err(err)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
