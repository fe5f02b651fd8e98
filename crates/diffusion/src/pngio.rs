//! PNG out, with the recipe as an A1111-style `parameters` text chunk and a `mintframe` JSON
//! chunk. Init images and masks come in decoded (the studio reads them through the media
//! crate's guarded decoder), so this crate reads no image files of its own.

use std::io::Cursor;
use std::path::Path;

use crate::error::{Error, Result, io};
use crate::pipeline::Rgb;

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

/// An RGBA8 PNG (straight alpha) with text chunks, as [`encode_png`].
pub fn encode_png_rgba(
    width: u32,
    height: u32,
    rgba: &[u8],
    chunks: &[(&str, String)],
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let err = |e: png::EncodingError| Error::InvalidRequest(format!("PNG encoding failed: {e}"));
    {
        let mut enc = png::Encoder::new(&mut out, width, height);
        enc.set_color(png::ColorType::Rgba);
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
        w.write_image_data(rgba).map_err(err)?;
        w.finish().map_err(err)?;
    }
    Ok(out)
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
