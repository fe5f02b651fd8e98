//! Text to clip with AnimateDiff: every frame of a clip denoised together, the motion modules
//! ([`crate::motion`]) attending across frames after each UNet block. A clip longer than the
//! motion module's context is denoised in overlapping windows each step, their predictions
//! blended with weights that fall off towards each window's ends (so no seam shows where one
//! window hands over to the next), as AnimateDiff-Evolved's sliding contexts do. A looped clip's
//! windows wrap around its end, so the last frame is denoised beside the first and flows into
//! it (Evolved's `closed_loop`).

use candle_core::Tensor;
use mintframe_jobs::JobCtx;

use crate::error::{Error, Result};
use crate::model::Model;
use crate::motion::MotionAdapter;
use crate::pipeline::{PreviewFn, Request, Rgb, latent_preview, tensor_to_rgb};
use crate::scheduler::Sampler;
use crate::weights::normal_vec;

/// A clip: the request's prompt, size, steps, guidance, scheduler and seed, for `frames`
/// frames, in windows of `context` frames overlapping by `overlap`; `looped` closes the loop.
#[derive(Debug, Clone)]
pub struct ClipRequest {
    pub req: Request,
    pub frames: usize,
    pub context: usize,
    pub overlap: usize,
    pub looped: bool,
    /// Later keyframes: the request's prompt and seed are frame 0's. Between two, the text
    /// embeddings (and, on a walk, the noise) are slerped; a looped clip walks back to frame 0.
    pub keyframes: Vec<Keyframe>,
}

/// A (prompt, seed) the clip passes through at `frame`.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyframe {
    pub frame: usize,
    pub prompt: String,
    pub negative_prompt: String,
    pub seed: u64,
}

/// For each of `n` frames: the keyframes it lies between (indices into `keys`, which starts
/// with frame 0's) and how far from the first (0–1). Past the last keyframe a looped clip heads
/// back to the first (reached at frame `n`); an open one stays on the last.
pub fn walk_points(n: usize, keys: &[Keyframe], looped: bool) -> Vec<(usize, usize, f32)> {
    (0..n)
        .map(|f| {
            let after = keys.iter().rposition(|k| k.frame <= f).unwrap_or(0);
            match keys.get(after + 1) {
                Some(next) => {
                    let (a, b) = (keys[after].frame, next.frame);
                    (after, after + 1, (f - a) as f32 / (b - a).max(1) as f32)
                }
                None if looped && after > 0 => {
                    let a = keys[after].frame;
                    (after, 0, (f - a) as f32 / (n - a).max(1) as f32)
                }
                None => (after, after, 0.0),
            }
        })
        .collect()
}

/// Checks keyframes: inside the clip, after frame 0, in order, one per frame.
fn check_keys(clip: &ClipRequest) -> Result<Vec<Keyframe>> {
    let mut keys = vec![Keyframe {
        frame: 0,
        prompt: clip.req.prompt.clone(),
        negative_prompt: clip.req.negative_prompt.clone(),
        seed: clip.req.seed,
    }];
    for k in &clip.keyframes {
        let last = keys.last().map(|k| k.frame).unwrap_or(0);
        if k.frame <= last || k.frame >= clip.frames {
            return Err(Error::InvalidRequest(format!(
                "a keyframe at frame {}: keyframes come after frame 0, in order, inside the clip's {} frames",
                k.frame, clip.frames
            )));
        }
        keys.push(k.clone());
    }
    Ok(keys)
}

/// A walk without motion modules: every frame its own image, drawn from the slerp of its two
/// keyframes' noise and text embeddings.
pub fn generate_walk(model: &Model, clip: &ClipRequest, ctx: &JobCtx) -> Result<Vec<Rgb>> {
    let n = clip.frames;
    if n == 0 || n > MAX_CLIP_FRAMES {
        return Err(Error::InvalidRequest(format!(
            "{n} frames: a clip has 1 to {MAX_CLIP_FRAMES}"
        )));
    }
    let keys = check_keys(clip)?;
    let quiet = JobCtx::new(ctx.cancel_token().clone(), |_| {});
    let mut out = Vec::with_capacity(n);
    for (f, (a, b, t)) in walk_points(n, &keys, clip.looped).into_iter().enumerate() {
        ctx.check()?;
        ctx.progress("draw frame", f as u64, n as u64);
        let (ka, kb) = (&keys[a], &keys[b]);
        let req = Request {
            prompt: ka.prompt.clone(),
            negative_prompt: ka.negative_prompt.clone(),
            seed: ka.seed,
            batch: 1,
            between: (a != b).then(|| crate::pipeline::Between {
                prompt: kb.prompt.clone(),
                negative_prompt: kb.negative_prompt.clone(),
                seed: kb.seed,
                t,
            }),
            ..clip.req.clone()
        };
        let img = crate::pipeline::generate(model, &req, &quiet, None)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::InvalidRequest("the generation returned no image".into()))?;
        out.push(img.image);
    }
    ctx.progress("draw frame", n as u64, n as u64);
    Ok(out)
}

/// Where a model folder keeps its own motion adapter, as diffusers' `AnimateDiffPipeline`
/// saves it: a model with one needs no `--motion`.
pub const MOTION_FOLDER: &str = "motion_adapter";

/// The largest clip one call makes.
pub const MAX_CLIP_FRAMES: usize = 256;

/// The windows `[start, start + len)` covering `frames` frames: `context` long, each starting
/// `context - overlap` after the last, the last one ending at the clip's end.
pub fn windows(frames: usize, context: usize, overlap: usize) -> Vec<(usize, usize)> {
    if frames <= context {
        return vec![(0, frames)];
    }
    let stride = (context - overlap).max(1);
    let mut out = Vec::new();
    let mut s = 0;
    loop {
        if s + context >= frames {
            out.push((frames - context, context));
            break;
        }
        out.push((s, context));
        s += stride;
    }
    out
}

/// The frames of each window of a looped clip: windows `context` long (the whole clip when
/// shorter) every `context - overlap` frames, wrapping past the end to the start, so every
/// pair of neighbours — the last frame and the first too — shares a window. A clip no longer
/// than the context gets a second window turned half way round, which puts the seam in its
/// middle.
pub fn looped_windows(frames: usize, context: usize, overlap: usize) -> Vec<Vec<usize>> {
    if frames <= context {
        let half = frames / 2;
        let mut out = vec![(0..frames).collect::<Vec<_>>()];
        if frames > 1 {
            out.push((0..frames).map(|k| (k + half) % frames).collect());
        }
        return out;
    }
    let stride = (context - overlap).max(1);
    (0..frames)
        .step_by(stride)
        .map(|s| (0..context).map(|k| (s + k) % frames).collect())
        .collect()
}

/// Each frame's weight in its window: rising from the ends to the middle (1, 2, …, 2, 1).
fn fuse_weights(len: usize) -> Vec<f32> {
    (0..len).map(|k| (k + 1).min(len - k) as f32).collect()
}

/// Denoises a clip and decodes each frame.
pub fn generate_clip(
    model: &Model,
    motion: &MotionAdapter,
    clip: &ClipRequest,
    ctx: &JobCtx,
    preview: Option<PreviewFn<'_>>,
) -> Result<Vec<Rgb>> {
    let req = &clip.req;
    let factor = model.config.vae.factor() as u32;
    req.validate(factor)?;
    motion.check_base(&model.config.unet)?;
    let positions = motion.config().motion_max_seq_length;
    let n = clip.frames;
    if n == 0 || n > MAX_CLIP_FRAMES {
        return Err(Error::InvalidRequest(format!(
            "{n} frames: a clip has 1 to {MAX_CLIP_FRAMES}"
        )));
    }
    if clip.context == 0 || clip.context > positions {
        return Err(Error::InvalidRequest(format!(
            "a context of {} frames: this motion module takes 1 to {positions} at once",
            clip.context
        )));
    }
    if clip.overlap >= clip.context {
        return Err(Error::InvalidRequest(format!(
            "an overlap of {} frames needs a context longer than that (it is {})",
            clip.overlap, clip.context
        )));
    }
    if req.init_image.is_some() || req.mask.is_some() {
        return Err(Error::InvalidRequest(
            "a clip starts from noise: img2img clips are not made here".into(),
        ));
    }
    if model.config.unet.in_channels != model.config.vae.latent_channels {
        return Err(Error::InvalidRequest(
            "AnimateDiff needs a plain model, not an inpainting one".into(),
        ));
    }
    let latent_c = model.config.vae.latent_channels;
    let (lh, lw) = (
        (req.height / factor) as usize,
        (req.width / factor) as usize,
    );
    // One seed per frame: frames start from different noise and the motion modules tie them.
    let seeds: Vec<u64> = (0..n as u64).map(|i| req.seed.wrapping_add(i)).collect();

    ctx.progress("encode prompt", 0, 1);
    ctx.check()?;
    let keys = check_keys(clip)?;
    let chunks = keys
        .iter()
        .map(|k| {
            model
                .chunk_count(&k.prompt)
                .max(model.chunk_count(&k.negative_prompt))
        })
        .max()
        .unwrap_or(1);
    let cfg = req.guidance > 1.0;
    let mut conds = Vec::with_capacity(keys.len());
    let mut unconds = Vec::with_capacity(keys.len());
    for k in &keys {
        conds.push(model.encode_prompt(&k.prompt, chunks)?.context);
        if cfg {
            unconds.push(model.encode_prompt(&k.negative_prompt, chunks)?.context);
        }
    }
    // Each frame's embeddings: its keyframes' slerped (prompt travel), one tensor per frame.
    let points = walk_points(n, &keys, clip.looped);
    let per_frame = |e: &[Tensor]| -> Result<Vec<Tensor>> {
        points
            .iter()
            .map(|&(a, b, t)| {
                if a == b {
                    Ok(e[a].clone())
                } else {
                    crate::pipeline::slerp(&e[a], &e[b], t)
                }
            })
            .collect()
    };
    let cond = per_frame(&conds)?;
    let uncond = if cfg {
        Some(per_frame(&unconds)?)
    } else {
        None
    };
    ctx.progress("encode prompt", 1, 1);

    let mut sampler = Sampler::new(
        req.scheduler,
        &model.config.scheduler,
        req.steps,
        1.0,
        &seeds,
    )?;
    let mut data = Vec::with_capacity(n * latent_c * lh * lw);
    for s in &seeds {
        data.extend(normal_vec(*s, latent_c * lh * lw));
    }
    let noise =
        Tensor::from_vec(data, (n, latent_c, lh, lw), &model.device)?.to_dtype(model.dtype)?;
    let mut x = sampler.init_noise(&noise)?;
    let plan: Vec<Vec<usize>> = if clip.looped {
        looped_windows(n, clip.context, clip.overlap)
    } else {
        windows(n, clip.context, clip.overlap)
            .into_iter()
            .map(|(s, len)| (s..s + len).collect())
            .collect()
    };
    let total = sampler.steps();
    for i in 0..total {
        ctx.check()?;
        ctx.progress("denoise", i as u64, total as u64);
        let scaled = sampler.scale_input(&x, i)?;
        let mut acc = Tensor::zeros(
            (n, latent_c, lh, lw),
            candle_core::DType::F32,
            &model.device,
        )?;
        let mut weight = vec![0f32; n];
        for idx in &plan {
            let len = idx.len();
            let at = Tensor::from_vec(
                idx.iter().map(|&k| k as u32).collect::<Vec<u32>>(),
                (len,),
                &model.device,
            )?;
            let xw = scaled.index_select(&at, 0)?;
            let pick = |e: &[Tensor]| -> Result<Tensor> {
                Ok(Tensor::cat(
                    &idx.iter().map(|&k| &e[k]).collect::<Vec<_>>(),
                    0,
                )?)
            };
            let (xin, context) = match &uncond {
                // Frame-major per batch item: the unconditional clip, then the prompted one.
                Some(u) => (
                    Tensor::cat(&[&xw, &xw], 0)?,
                    Tensor::cat(&[&pick(u)?, &pick(&cond)?], 0)?,
                ),
                None => (xw.clone(), pick(&cond)?),
            };
            let rows = xin.dim(0)?;
            let t = Tensor::from_vec(
                vec![sampler.timestep(i) as f32; rows],
                (rows,),
                &model.device,
            )?;
            let out = model
                .unet
                .forward_motion(&xin, &t, &context, None, motion, len)?;
            let out = if cfg {
                let u = out.narrow(0, 0, len)?;
                let c = out.narrow(0, len, len)?;
                (&u + ((c - &u)? * req.guidance)?)?
            } else {
                out
            };
            let w = fuse_weights(len);
            let wt = Tensor::from_vec(w.clone(), (len, 1, 1, 1), &model.device)?;
            let part = out.to_dtype(candle_core::DType::F32)?.broadcast_mul(&wt)?;
            acc = acc.index_add(&at, &part, 0)?;
            for (k, wk) in idx.iter().zip(&w) {
                weight[*k] += wk;
            }
        }
        let norm = Tensor::from_vec(
            weight
                .iter()
                .map(|w| 1.0 / w.max(1e-6))
                .collect::<Vec<f32>>(),
            (n, 1, 1, 1),
            &model.device,
        )?;
        let out = acc.broadcast_mul(&norm)?.to_dtype(model.dtype)?;
        x = sampler.step(&out, i, &x)?;
        if let Some(p) = preview {
            p(i + 1, &latent_preview(&x.narrow(0, 0, 1)?)?);
        }
    }
    ctx.check()?;
    ctx.progress("denoise", total as u64, total as u64);
    let mut frames = Vec::with_capacity(n);
    for k in 0..n {
        ctx.check()?;
        ctx.progress("decode", k as u64, n as u64);
        let img = model.vae.decode(&x.narrow(0, k, 1)?, req.vae_tiling)?;
        frames.push(tensor_to_rgb(&img)?);
    }
    ctx.progress("decode", n as u64, n as u64);
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_clip_and_overlap_as_asked() {
        assert_eq!(windows(6, 16, 4), vec![(0, 6)]);
        assert_eq!(windows(16, 16, 4), vec![(0, 16)]);
        assert_eq!(windows(20, 8, 2), vec![(0, 8), (6, 8), (12, 8)]);
        assert_eq!(windows(21, 8, 2), vec![(0, 8), (6, 8), (12, 8), (13, 8)]);
        for (n, c, o) in [(40, 16, 4), (17, 16, 0), (100, 12, 6)] {
            let w = windows(n, c, o);
            let mut seen = vec![false; n];
            for (s, len) in &w {
                assert_eq!(*len, c);
                seen[*s..s + len].iter_mut().for_each(|x| *x = true);
            }
            assert!(seen.iter().all(|x| *x), "{n} {c} {o}: {w:?}");
            assert_eq!(w.last().map(|(s, l)| s + l), Some(n));
        }
        assert_eq!(fuse_weights(5), vec![1.0, 2.0, 3.0, 2.0, 1.0]);
    }

    #[test]
    fn walk_points_run_between_keyframes_and_back_to_the_first_when_looped() {
        let key = |frame| Keyframe {
            frame,
            prompt: String::new(),
            negative_prompt: String::new(),
            seed: 0,
        };
        let keys = [key(0), key(4)];
        let open = walk_points(8, &keys, false);
        assert_eq!(open[0], (0, 1, 0.0));
        assert_eq!(open[2], (0, 1, 0.5));
        assert_eq!(open[4], (1, 1, 0.0));
        assert_eq!(open[7], (1, 1, 0.0));
        let looped = walk_points(8, &keys, true);
        assert_eq!(looped[4], (1, 0, 0.0));
        assert_eq!(looped[6], (1, 0, 0.5));
        assert_eq!(walk_points(3, &keys[..1], true), vec![(0, 0, 0.0); 3]);
    }

    #[test]
    fn looped_windows_put_every_pair_of_neighbours_and_the_seam_in_a_window() {
        assert_eq!(
            looped_windows(4, 16, 4),
            vec![vec![0, 1, 2, 3], vec![2, 3, 0, 1]]
        );
        assert_eq!(looped_windows(1, 16, 4), vec![vec![0]]);
        for (n, c, o) in [
            (24, 16, 4),
            (24, 8, 2),
            (16, 16, 4),
            (5, 16, 0),
            (100, 12, 6),
        ] {
            let w = looped_windows(n, c, o);
            for k in 0..n {
                let next = (k + 1) % n;
                assert!(
                    w.iter()
                        .any(|win| win.windows(2).any(|p| p[0] == k && p[1] == next)),
                    "{n} {c} {o}: {k}→{next} in no window: {w:?}"
                );
            }
            for win in &w {
                assert_eq!(win.len(), n.min(c));
                let mut seen = win.clone();
                seen.sort();
                seen.dedup();
                assert_eq!(seen.len(), win.len(), "a frame twice in {win:?}");
            }
        }
    }
}
