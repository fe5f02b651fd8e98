//! Headless preview renders of stills: the library's previews and `mintframe render`.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use mintframe_media::{Rgba, read_png_rgba};
use mintframe_render::{Backdrop, Image, Onion, Renderer, Sampling, View};
use mintframe_types::PreviewSpec;

use crate::StudioError;

/// One renderer per process: opening a device costs more than a render.
fn renderer() -> Result<&'static Mutex<Renderer>, StudioError> {
    static R: OnceLock<Result<Mutex<Renderer>, String>> = OnceLock::new();
    R.get_or_init(|| Renderer::new().map(Mutex::new).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| StudioError::Render(e.clone()))
}

/// `checker` (or empty) or a colour such as `#20242c`.
pub fn backdrop(s: &str) -> Result<Backdrop, StudioError> {
    if s.is_empty() || s == "checker" {
        return Ok(Backdrop::CHECKER);
    }
    let hex = s.trim_start_matches('#');
    let bad = || {
        StudioError::Render(format!(
            "backdrop {s:?} is not `checker` or a colour like #20242c"
        ))
    };
    if hex.len() != 6 {
        return Err(bad());
    }
    let v = u32::from_str_radix(hex, 16).map_err(|_| bad())?;
    Ok(Backdrop::Solid([(v >> 16) as u8, (v >> 8) as u8, v as u8]))
}

/// How strongly onion-skin neighbours show.
const ONION_OPACITY: f32 = 0.35;

fn to_image(still: &Rgba) -> Result<Image, StudioError> {
    Image::new(still.width, still.height, still.data.clone()).map_err(StudioError::from)
}

/// Cells of `fw`×`fh` in a sheet, row by row; a partial last column or row is not a frame.
fn cell_count(still: &Rgba, fw: u32, fh: u32) -> Result<u32, StudioError> {
    if fw == 0 || fh == 0 || fw > still.width || fh > still.height {
        return Err(StudioError::Render(format!(
            "frame size {fw}×{fh} does not fit the {}×{} sheet",
            still.width, still.height
        )));
    }
    Ok((still.width / fw) * (still.height / fh))
}

fn cell(still: &Rgba, fw: u32, fh: u32, index: u32) -> Result<Image, StudioError> {
    let cols = still.width / fw;
    let (cx, cy) = ((index % cols) * fw, (index / cols) * fh);
    let mut rgba = Vec::with_capacity((fw * fh * 4) as usize);
    for y in cy..cy + fh {
        let start = ((y * still.width + cx) * 4) as usize;
        rgba.extend_from_slice(&still.data[start..start + (fw * 4) as usize]);
    }
    Image::new(fw, fh, rgba).map_err(StudioError::from)
}

/// A file or folder as frames for the preview window (see [`mintframe_media::load_sequence`]).
pub fn load_sequence(
    path: &Path,
    frame_size: Option<[u32; 2]>,
) -> Result<mintframe_media::Sequence, StudioError> {
    mintframe_media::load_sequence(path, frame_size).map_err(StudioError::from)
}

/// Renders `still` as `spec` says.
pub fn render_still(still: &Rgba, spec: &PreviewSpec) -> Result<Rgba, StudioError> {
    render_still_over(still, spec, None)
}

/// [`render_still`] over a game's background image (stretched to the output) instead of
/// `spec.backdrop`. Only the command line offers it: the webview names no files.
pub fn render_still_over(
    still: &Rgba,
    spec: &PreviewSpec,
    backdrop_image: Option<&Rgba>,
) -> Result<Rgba, StudioError> {
    if spec.zoom == 0 || spec.zoom > 64 {
        return Err(StudioError::Render(format!(
            "zoom {} is out of range: use 1 to 64",
            spec.zoom
        )));
    }
    let (frame, onion) = match spec.frame_size {
        None => (to_image(still)?, None),
        Some([fw, fh]) => {
            let count = cell_count(still, fw, fh)?;
            let i = spec.frame_index;
            if i >= count {
                return Err(StudioError::Render(format!(
                    "frame {i} does not exist: the sheet has {count} frames of {fw}×{fh} (0 to {})",
                    count - 1
                )));
            }
            let onion = spec.onion.then(|| -> Result<Onion, StudioError> {
                Ok(Onion {
                    prev: if i > 0 {
                        Some(cell(still, fw, fh, i - 1)?)
                    } else {
                        None
                    },
                    next: if i + 1 < count {
                        Some(cell(still, fw, fh, i + 1)?)
                    } else {
                        None
                    },
                    opacity: ONION_OPACITY,
                })
            });
            (cell(still, fw, fh, i)?, onion.transpose()?)
        }
    };
    let view = View {
        zoom: spec.zoom,
        tile: spec.tile,
        sampling: if spec.linear {
            Sampling::Linear
        } else {
            Sampling::Nearest
        },
        backdrop: backdrop(&spec.backdrop)?,
        grid: spec.grid,
        onion,
        backdrop_image: backdrop_image.map(to_image).transpose()?,
    };
    let r = renderer()?.lock().unwrap_or_else(|p| p.into_inner());
    let out = r.render(&frame, &view).map_err(StudioError::from)?;
    Ok(Rgba {
        width: out.width,
        height: out.height,
        data: out.rgba,
    })
}

/// Reads a PNG file as RGBA.
pub fn read_png(path: &Path) -> Result<Rgba, StudioError> {
    read_png_rgba(path).map_err(StudioError::from)
}

/// Renders a PNG file.
pub fn render_png_file(path: &Path, spec: &PreviewSpec) -> Result<Rgba, StudioError> {
    render_still(&read_png(path)?, spec)
}

/// Every frame of a sheet (`spec.frame_size` required) rendered as `spec` says, as a looping
/// GIF at `fps`: an animated preview to share or to show in the library.
pub fn render_animation(
    still: &Rgba,
    spec: &PreviewSpec,
    fps: u32,
) -> Result<Vec<u8>, StudioError> {
    let frames = render_animation_frames(still, spec)?;
    mintframe_media::encode_gif(&frames, fps).map_err(StudioError::from)
}

/// Every cell of a sheet (`spec.frame_size` required) rendered as `spec` says.
pub fn render_animation_frames(still: &Rgba, spec: &PreviewSpec) -> Result<Vec<Rgba>, StudioError> {
    let Some([fw, fh]) = spec.frame_size else {
        return Err(StudioError::Render(
            "an animation needs the sheet's cell size (--frame WxH)".into(),
        ));
    };
    let count = cell_count(still, fw, fh)?;
    let mut frames = Vec::with_capacity(count as usize);
    for i in 0..count {
        let one = PreviewSpec {
            frame_index: i,
            onion: false,
            ..spec.clone()
        };
        frames.push(render_still(still, &one)?);
    }
    Ok(frames)
}

/// Longest side of the library's thumbnails, in pixels.
pub const THUMB_SIDE: u32 = 96;
/// An animated thumbnail shows at most this many frames, spread over the whole animation.
const THUMB_FRAMES: usize = 24;

/// A thumbnail of `seq` from the headless renderer: a PNG for one frame, a looping GIF for more
/// (timed like the source). Returns the bytes and their MIME type.
pub fn thumbnail(
    seq: &mintframe_media::Sequence,
    side: u32,
) -> Result<(Vec<u8>, &'static str), StudioError> {
    let n = seq.frames.len();
    if n == 0 {
        return Err(StudioError::Render("nothing to show: no frames".into()));
    }
    let picked: Vec<usize> = if n <= THUMB_FRAMES {
        (0..n).collect()
    } else {
        (0..THUMB_FRAMES).map(|i| i * n / THUMB_FRAMES).collect()
    };
    let backdrop = Backdrop::Checker {
        a: [0x66, 0x66, 0x66],
        b: [0x99, 0x99, 0x99],
        cell: 4,
    };
    let r = renderer()?.lock().unwrap_or_else(|p| p.into_inner());
    let mut frames = Vec::with_capacity(picked.len());
    for &i in &picked {
        let t = r
            .thumbnail(&to_image(&seq.frames[i])?, side, backdrop)
            .map_err(StudioError::from)?;
        frames.push(Rgba {
            width: t.width,
            height: t.height,
            data: t.rgba,
        });
    }
    drop(r);
    if frames.len() == 1 {
        let png = mintframe_media::encode_png_rgba(&frames[0]).map_err(StudioError::from)?;
        return Ok((png, "image/png"));
    }
    let total_ms: f64 = seq
        .durations_ms
        .iter()
        .map(|d| d.map_or(1000.0 / 12.0, f64::from))
        .sum();
    let fps = (picked.len() as f64 * 1000.0 / total_ms.max(1.0)).round() as u32;
    let gif = mintframe_media::encode_gif(&frames, fps.clamp(1, 50)).map_err(StudioError::from)?;
    Ok((gif, "image/gif"))
}

/// Every frame of `seq` at `zoom`, in a grid of `columns` with a 2-pixel gutter: a contact sheet
/// for reviews and READMEs.
pub fn contact_sheet(
    seq: &mintframe_media::Sequence,
    zoom: u32,
    columns: u32,
    backdrop_spec: &str,
) -> Result<Rgba, StudioError> {
    const GAP: u32 = 2;
    let n = seq.frames.len() as u32;
    if n == 0 || columns == 0 {
        return Err(StudioError::Render(
            "a contact sheet needs frames and at least one column".into(),
        ));
    }
    let cols = columns.min(n);
    let rows = n.div_ceil(cols);
    let view = View {
        zoom,
        backdrop: backdrop(backdrop_spec)?,
        ..View::default()
    };
    let r = renderer()?.lock().unwrap_or_else(|p| p.into_inner());
    let mut cells = Vec::with_capacity(n as usize);
    for f in &seq.frames {
        cells.push(r.render(&to_image(f)?, &view).map_err(StudioError::from)?);
    }
    drop(r);
    let (cw, ch) = (cells[0].width, cells[0].height);
    let w = cols * cw + (cols + 1) * GAP;
    let h = rows * ch + (rows + 1) * GAP;
    if w > mintframe_render::MAX_OUTPUT_SIDE || h > mintframe_render::MAX_OUTPUT_SIDE {
        return Err(StudioError::Render(format!(
            "the contact sheet would be {w}×{h}; use fewer columns or a smaller zoom"
        )));
    }
    let mut data = [0x20u8, 0x20, 0x20, 0xff].repeat((w * h) as usize);
    for (i, c) in cells.iter().enumerate() {
        let (col, row) = (i as u32 % cols, i as u32 / cols);
        let (x0, y0) = (GAP + col * (cw + GAP), GAP + row * (ch + GAP));
        for y in 0..ch {
            let src = (y * cw * 4) as usize;
            let dst = (((y0 + y) * w + x0) * 4) as usize;
            data[dst..dst + (cw * 4) as usize]
                .copy_from_slice(&c.rgba[src..src + (cw * 4) as usize]);
        }
    }
    Ok(Rgba {
        width: w,
        height: h,
        data,
    })
}
