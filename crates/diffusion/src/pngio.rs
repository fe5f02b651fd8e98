//! PNG in and out: init images and masks are read as PNG; outputs carry their recipe as an
//! A1111-style `parameters` text chunk and a `mintframe` JSON chunk.

use std::io::Cursor;
use std::path::Path;

use crate::error::{Error, Result, io};
use crate::pipeline::{Gray, Rgb};

/// Encodes `img` with text chunks. Latin-1 text goes into tEXt (what A1111 and most readers
/// expect); anything else into UTF-8 iTXt.
pub fn encode_png(img: &Rgb, chunks: &[(&str, String)]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let err = |e: png::EncodingError| Error::InvalidRequest(format!("PNG encoding failed: {e}"));
    {
        let mut enc = png::Encoder::new(&mut out, img.width, img.height);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        for (key, text) in chunks {
            if text.chars().all(|c| (c as u32) < 256) && *key == "parameters" {
                enc.add_text_chunk((*key).to_owned(), text.clone())
                    .map_err(err)?;
            } else {
                enc.add_itxt_chunk((*key).to_owned(), text.clone())
                    .map_err(err)?;
            }
        }
        let mut w = enc.write_header().map_err(err)?;
        w.write_image_data(&img.data).map_err(err)?;
        w.finish().map_err(err)?;
    }
    Ok(out)
}

struct Decoded {
    width: u32,
    height: u32,
    channels: usize,
    data: Vec<u8>,
}

fn decode(path: &Path) -> Result<Decoded> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let bad = |reason: String| Error::Image {
        path: path.to_owned(),
        reason,
    };
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err(bad(
            "is not a PNG file; init images and masks must be PNG (export it as PNG first)".into(),
        ));
    }
    let mut dec = png::Decoder::new(Cursor::new(&bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec
        .read_info()
        .map_err(|e| bad(format!("unreadable PNG ({e})")))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| bad("image too large".into()))?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(format!("truncated or corrupt PNG ({e})")))?;
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    Ok(Decoded {
        width: info.width,
        height: info.height,
        channels,
        data: buf,
    })
}

/// Reads a PNG as RGB (alpha is dropped, grey is spread over the three channels).
pub fn read_rgb(path: &Path) -> Result<Rgb> {
    let d = decode(path)?;
    let data = match d.channels {
        3 => d.data,
        4 => d.data.chunks(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
        1 => d.data.iter().flat_map(|&g| [g, g, g]).collect(),
        2 => d.data.chunks(2).flat_map(|p| [p[0], p[0], p[0]]).collect(),
        n => {
            return Err(Error::Image {
                path: path.to_owned(),
                reason: format!("{n} channels are not supported"),
            });
        }
    };
    Ok(Rgb {
        width: d.width,
        height: d.height,
        data,
    })
}

/// Reads a PNG mask as grey: white repaints, black keeps (colour images use their luma, images
/// with alpha their alpha where it is not opaque everywhere).
pub fn read_gray(path: &Path) -> Result<Gray> {
    let d = decode(path)?;
    let luma = |p: &[u8]| {
        ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8
    };
    let data = match d.channels {
        1 => d.data,
        2 => d.data.chunks(2).map(|p| p[0]).collect(),
        3 => d.data.chunks(3).map(luma).collect(),
        4 => d.data.chunks(4).map(luma).collect(),
        n => {
            return Err(Error::Image {
                path: path.to_owned(),
                reason: format!("{n} channels are not supported"),
            });
        }
    };
    Ok(Gray {
        width: d.width,
        height: d.height,
        data,
    })
}

/// Text chunks of a PNG, keyword → text.
pub fn read_text_chunks(bytes: &[u8]) -> Result<Vec<(String, String)>> {
    let dec = png::Decoder::new(Cursor::new(bytes));
    let reader = dec
        .read_info()
        .map_err(|e| Error::InvalidRequest(format!("unreadable PNG ({e})")))?;
    let info = reader.info();
    let mut out: Vec<(String, String)> = info
        .uncompressed_latin1_text
        .iter()
        .map(|c| (c.keyword.clone(), c.text.clone()))
        .collect();
    for c in &info.utf8_text {
        if let Ok(t) = c.get_text() {
            out.push((c.keyword.clone(), t));
        }
    }
    Ok(out)
}

/// Writes a PNG next to its final name and renames it into place.
pub fn write_png(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("png.part");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}
