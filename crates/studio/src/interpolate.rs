//! In-between frames with RIFE: `factor − 1` new frames between every two of a clip (and
//! between the last and the first of a loop), alpha carried by a second pass over the alpha
//! plane, and — for pixel-art clips, whose frames share a few colours — every new frame put
//! back into the source's exact palette so no blended colour appears.

use std::collections::BTreeSet;
use std::path::Path;

use mintframe_diffusion::rife::Rife;
use mintframe_diffusion::{Device, Rgb};
use mintframe_jobs::JobCtx;
use mintframe_media::Rgba;
use mintframe_types::Dither;

use crate::StudioError;

/// The most colours a clip may use and still count as pixel art for the palette lock.
pub const PALETTE_LOCK_MAX: usize = 256;

/// When to put new frames back into the source's palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaletteLock {
    /// When the source uses at most [`PALETTE_LOCK_MAX`] colours.
    Auto,
    On,
    Off,
}

/// What an interpolation made.
#[derive(Debug, Clone)]
pub struct Interpolated {
    pub frames: Vec<Rgba>,
    /// The source palette the new frames were locked to, if they were.
    pub palette: Option<usize>,
}

/// The distinct colours of the opaque-enough pixels of `frames`, up to `max + 1`.
fn colours(frames: &[Rgba], max: usize) -> BTreeSet<[u8; 3]> {
    let mut set = BTreeSet::new();
    for f in frames {
        for p in f.data.chunks_exact(4).filter(|p| p[3] >= 128) {
            set.insert([p[0], p[1], p[2]]);
            if set.len() > max {
                return set;
            }
        }
    }
    set
}

fn rgb_of(f: &Rgba, alpha: bool) -> Rgb {
    Rgb {
        width: f.width,
        height: f.height,
        data: f
            .data
            .chunks_exact(4)
            .flat_map(|p| if alpha { [p[3]; 3] } else { [p[0], p[1], p[2]] })
            .collect(),
    }
}

/// Loads RIFE weights (a safetensors file: RIFE's `flownet` state dict).
pub fn load_rife(path: &Path) -> Result<Rife, StudioError> {
    Ok(Rife::load(path, &Device::Cpu)?)
}

/// `frames` with `factor − 1` RIFE frames between each two (and after the last, towards the
/// first, when `looped`).
pub fn interpolate_frames(
    rife: &Rife,
    frames: &[Rgba],
    factor: u32,
    looped: bool,
    lock: PaletteLock,
    ctx: &JobCtx,
) -> Result<Interpolated, StudioError> {
    if !(2..=16).contains(&factor) {
        return Err(StudioError::Settings(format!(
            "--factor {factor} is out of range: 2 to 16 (frames become that many times as many)"
        )));
    }
    let first = frames
        .first()
        .ok_or_else(|| StudioError::Settings("the source has no frames".into()))?;
    if frames.len() < 2 {
        return Err(StudioError::Settings(
            "one frame has nothing to interpolate to: give a clip of two or more".into(),
        ));
    }
    if let Some((i, f)) = frames
        .iter()
        .enumerate()
        .find(|(_, f)| (f.width, f.height) != (first.width, first.height))
    {
        return Err(StudioError::Settings(format!(
            "frame {i} is {}×{} but the first is {}×{}",
            f.width, f.height, first.width, first.height
        )));
    }
    let palette: Option<Vec<[u8; 3]>> = {
        let set = colours(frames, PALETTE_LOCK_MAX);
        match (lock, set.len() <= PALETTE_LOCK_MAX) {
            (PaletteLock::Off, _) => None,
            (PaletteLock::Auto, false) => None,
            (PaletteLock::On, false) => {
                return Err(StudioError::Settings(format!(
                    "the clip uses more than {PALETTE_LOCK_MAX} colours: it has no palette to lock to"
                )));
            }
            (_, true) => Some(set.into_iter().collect()),
        }
    };
    let has_alpha = frames
        .iter()
        .any(|f| f.data.chunks_exact(4).any(|p| p[3] < 255));
    let binary_alpha = frames
        .iter()
        .all(|f| f.data.chunks_exact(4).all(|p| p[3] == 0 || p[3] == 255));
    let pairs = if looped {
        frames.len()
    } else {
        frames.len() - 1
    };
    let total = (pairs * (factor as usize - 1)) as u64;
    let mut out = Vec::with_capacity(frames.len() * factor as usize);
    let mut made = 0u64;
    for i in 0..frames.len() {
        out.push(frames[i].clone());
        if i == pairs {
            break;
        }
        let (a, b) = (&frames[i], &frames[(i + 1) % frames.len()]);
        for k in 1..factor {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            let t = k as f32 / factor as f32;
            let rgb = rife.interpolate_rgb(&rgb_of(a, false), &rgb_of(b, false), t)?;
            let alpha = if has_alpha {
                Some(rife.interpolate_rgb(&rgb_of(a, true), &rgb_of(b, true), t)?)
            } else {
                None
            };
            let mut f = Rgba {
                width: a.width,
                height: a.height,
                data: rgb
                    .data
                    .chunks_exact(3)
                    .enumerate()
                    .flat_map(|(p, c)| {
                        let al = alpha.as_ref().map_or(255, |m| {
                            let v = m.data[p * 3];
                            if binary_alpha {
                                if v >= 128 { 255 } else { 0 }
                            } else {
                                v
                            }
                        });
                        [c[0], c[1], c[2], al]
                    })
                    .collect(),
            };
            if let Some(p) = &palette {
                mintframe_media::pixel::quantize(&mut f, p, Dither::None);
            }
            out.push(f);
            made += 1;
            ctx.progress("interpolate", made, total);
        }
    }
    Ok(Interpolated {
        frames: out,
        palette: palette.map(|p| p.len()),
    })
}
