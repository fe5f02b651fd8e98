//! txt2img, img2img and inpainting with classifier-free guidance. Every step reports progress and
//! checks for cancellation; every random draw is seeded per batch item.

use candle_core::{DType, Tensor};
use mintframe_jobs::JobCtx;
use serde::{Deserialize, Serialize};

use crate::controlnet::{ControlNet, Residuals};
use crate::error::{Error, Result};
use crate::latents::Latents;
use crate::model::Model;
use crate::reference::{Bank, Reference};
use crate::scheduler::{Sampler, SchedulerKind};
use crate::unet::AddedCond;
use crate::vae::Tiling;
use crate::weights::normal_vec;

/// An 8-bit RGB image, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// An 8-bit mask: 255 repaints, 0 keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gray {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// One generation request; `batch` items get seeds `seed, seed+1, …`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub prompt: String,
    pub negative_prompt: String,
    pub seed: u64,
    pub steps: usize,
    pub guidance: f64,
    pub width: u32,
    pub height: u32,
    pub scheduler: SchedulerKind,
    pub batch: usize,
    /// img2img / inpaint: how much of the init image is repainted (1 = all).
    pub strength: f64,
    #[serde(skip)]
    pub init_image: Option<Rgb>,
    #[serde(skip)]
    pub mask: Option<Gray>,
    /// Decode (and encode) the VAE in tiles.
    pub vae_tiling: Option<Tiling>,
    /// A point on a walk towards a second keyframe: this request's prompt and seed are the
    /// first.
    #[serde(default)]
    pub between: Option<Between>,
    /// The starting noise instead of the seeds' (`--latents`): compared latent for latent
    /// with another tool's run from the same noise.
    #[serde(skip)]
    pub latents: Option<Latents>,
    /// Decode with this tiny autoencoder (TAESD) instead of the model's VAE; the per-step
    /// previews use it too, so they show the image rather than the latents' colours.
    #[serde(skip)]
    pub tiny_decoder: Option<std::sync::Arc<crate::taesd::TinyDecoder>>,
}

/// The second keyframe of a walk and how far towards it (0–1): the starting noise and the
/// text embeddings (prompt and negative) are spherically interpolated between the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Between {
    pub prompt: String,
    pub negative_prompt: String,
    pub seed: u64,
    pub t: f32,
}

/// Spherical interpolation of two tensors of one shape, taken whole as vectors (linear where
/// they are nearly parallel): a walk between noises keeps the noise's norm, so every frame is
/// as noisy as a keyframe, where a straight mix would fade it towards grey.
pub fn slerp(a: &Tensor, b: &Tensor, t: f32) -> Result<Tensor> {
    if t <= 0.0 {
        return Ok(a.clone());
    }
    if t >= 1.0 {
        return Ok(b.clone());
    }
    let dtype = a.dtype();
    let (a32, b32) = (a.to_dtype(DType::F32)?, b.to_dtype(DType::F32)?);
    let na = a32.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
    let nb = b32.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?;
    let dot = (&a32 * &b32)?.sum_all()?.to_scalar::<f32>()?;
    let cos = (dot / (na * nb).max(1e-12)).clamp(-1.0, 1.0);
    let out = if cos.abs() > 0.9995 {
        ((&a32 * f64::from(1.0 - t))? + (&b32 * f64::from(t))?)?
    } else {
        let theta = cos.acos();
        let s = theta.sin();
        let wa = ((1.0 - t) * theta).sin() / s;
        let wb = (t * theta).sin() / s;
        ((&a32 * f64::from(wa))? + (&b32 * f64::from(wb))?)?
    };
    Ok(out.to_dtype(dtype)?)
}

impl Default for Request {
    fn default() -> Self {
        Request {
            prompt: String::new(),
            negative_prompt: String::new(),
            seed: 0,
            steps: 20,
            guidance: 7.5,
            width: 512,
            height: 512,
            scheduler: SchedulerKind::EulerA,
            batch: 1,
            strength: 0.75,
            init_image: None,
            mask: None,
            vae_tiling: None,
            between: None,
            latents: None,
            tiny_decoder: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Generated {
    pub image: Rgb,
    pub seed: u64,
    /// The final (scaled) latent `(1, 4, h/8, w/8)`, for decoders that read it too
    /// (LayerDiffuse's transparent decoder).
    pub latent: Tensor,
}

impl Request {
    /// Checks sizes and numbers before anything heavy runs.
    pub fn validate(&self, factor: u32) -> Result<()> {
        for (what, v) in [("width", self.width), ("height", self.height)] {
            if v == 0 || v % factor != 0 {
                return Err(Error::NotDivisibleBy8 {
                    what,
                    value: v,
                    suggestion: (v / factor).max(1) * factor,
                });
            }
        }
        if self.steps == 0 || self.steps > 1000 {
            return Err(Error::InvalidRequest(format!(
                "steps {} is out of range: use 1 to 1000",
                self.steps
            )));
        }
        if self.batch == 0 || self.batch > 64 {
            return Err(Error::InvalidRequest(format!(
                "batch {} is out of range: use 1 to 64",
                self.batch
            )));
        }
        if !(0.0..=1.0).contains(&self.strength) || self.strength.is_nan() {
            return Err(Error::InvalidRequest(format!(
                "strength {} is out of range: use 0.0 to 1.0",
                self.strength
            )));
        }
        if !self.guidance.is_finite() || self.guidance < 0.0 {
            return Err(Error::InvalidRequest(format!(
                "guidance {} must be 0 or more",
                self.guidance
            )));
        }
        if let Some(img) = &self.init_image
            && (img.width != self.width || img.height != self.height)
        {
            return Err(Error::InvalidRequest(format!(
                "the init image is {}×{} but the requested size is {}×{}; pass --width {} --height {} or resize the image",
                img.width, img.height, self.width, self.height, img.width, img.height
            )));
        }
        if let Some(m) = &self.mask {
            if self.init_image.is_none() {
                return Err(Error::InvalidRequest(
                    "a mask needs an init image to inpaint (--init-image)".into(),
                ));
            }
            if m.width != self.width || m.height != self.height {
                return Err(Error::InvalidRequest(format!(
                    "the mask is {}×{} but the image is {}×{}; the mask must have the image's size",
                    m.width, m.height, self.width, self.height
                )));
            }
        }
        Ok(())
    }
}

fn rgb_to_tensor(img: &Rgb, model: &Model) -> Result<Tensor> {
    let (w, h) = (img.width as usize, img.height as usize);
    let data: Vec<f32> = img
        .data
        .iter()
        .map(|&b| f32::from(b) / 127.5 - 1.0)
        .collect();
    Ok(Tensor::from_vec(data, (1, h, w, 3), &model.device)?
        .permute((0, 3, 1, 2))?
        .contiguous()?
        .to_dtype(model.dtype)?)
}

/// `(1, 3, h, w)` in [-1, 1] → RGB bytes.
pub fn tensor_to_rgb(t: &Tensor) -> Result<Rgb> {
    let (_, _, h, w) = t.dims4()?;
    let t = ((t.to_dtype(DType::F32)?.clamp(-1f32, 1f32)? + 1.0)? * 127.5)?
        .round()?
        .squeeze(0)?
        .permute((1, 2, 0))?
        .contiguous()?;
    let data: Vec<u8> = t
        .flatten_all()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(|v| v as u8)
        .collect();
    Ok(Rgb {
        width: w as u32,
        height: h as u32,
        data,
    })
}

/// A cheap look at latents (a fixed linear map from the 4 latent channels to RGB), for the
/// per-step preview; it costs microseconds where a VAE decode costs seconds.
pub fn latent_preview(latents: &Tensor) -> Result<Rgb> {
    let l = latents.narrow(0, 0, 1)?.to_dtype(DType::F32)?;
    let c = l.dim(1)?;
    if c != 4 {
        return tensor_to_rgb(&l.narrow(1, 0, 3.min(c))?);
    }
    let m = Tensor::new(
        &[
            [0.298f32, 0.207, 0.208],
            [0.187, 0.286, 0.173],
            [-0.158, 0.189, 0.264],
            [-0.184, -0.271, -0.473],
        ],
        l.device(),
    )?;
    let (_, _, h, w) = l.dims4()?;
    let flat = l.squeeze(0)?.reshape((4, h * w))?.t()?.matmul(&m)?;
    let img = flat.t()?.reshape((1, 3, h, w))?;
    tensor_to_rgb(&img)
}

fn draw_noise(seeds: &[u64], shape: (usize, usize, usize), model: &Model) -> Result<Tensor> {
    let (c, h, w) = shape;
    let mut data = Vec::with_capacity(seeds.len() * c * h * w);
    for s in seeds {
        data.extend(normal_vec(*s, c * h * w));
    }
    Ok(Tensor::from_vec(data, (seeds.len(), c, h, w), &model.device)?.to_dtype(model.dtype)?)
}

/// One ControlNet steering a generation: its conditioning image (the request's size), its
/// weight and the share of the steps it acts in, as diffusers' `controlnet_conditioning_scale`,
/// `control_guidance_start` and `control_guidance_end`.
#[derive(Debug, Clone)]
pub struct Control<'a> {
    pub net: &'a ControlNet,
    pub image: Rgb,
    pub weight: f64,
    pub start: f64,
    pub end: f64,
    /// Guess mode: the ControlNet sees only the prompted half of the batch and its residuals
    /// grow from 0.1 at the outer skips to 1 at the middle, so the image leads the prompt.
    pub guess: bool,
}

impl Control<'_> {
    fn validate(&self, req: &Request, model: &Model) -> Result<()> {
        if self.image.width != req.width || self.image.height != req.height {
            return Err(Error::InvalidRequest(format!(
                "the control image is {}×{} but the requested size is {}×{}; the control image must have the image's size",
                self.image.width, self.image.height, req.width, req.height
            )));
        }
        if !(0.0..=2.0).contains(&self.weight) || self.weight.is_nan() {
            return Err(Error::InvalidRequest(format!(
                "ControlNet weight {} is out of range: use 0.0 to 2.0",
                self.weight
            )));
        }
        if !(0.0..=1.0).contains(&self.start)
            || !(0.0..=1.0).contains(&self.end)
            || self.start >= self.end
        {
            return Err(Error::InvalidRequest(format!(
                "ControlNet start {} and end {} must lie in 0..1 with start before end",
                self.start, self.end
            )));
        }
        self.net.check_base(&model.config.unet)?;
        let f = model.config.vae.factor();
        if self.net.config().factor() != f {
            return Err(Error::InvalidRequest(format!(
                "ControlNet {} reads its image at 1/{} of the size but this model's latents are 1/{}: it was made for another base model",
                self.net.source.display(),
                self.net.config().factor(),
                f
            )));
        }
        Ok(())
    }

    /// Whether it acts at step `i` of `n`, as diffusers' `controlnet_keep` says.
    fn acts_at(&self, i: usize, n: usize) -> bool {
        let (a, b) = (i as f64 / n as f64, (i + 1) as f64 / n as f64);
        !(a < self.start || b > self.end)
    }

    /// The image as the ControlNet reads it: `(1, 3, h, w)` in [0, 1].
    fn tensor(&self, model: &Model) -> Result<Tensor> {
        let (w, h) = (self.image.width as usize, self.image.height as usize);
        let data: Vec<f32> = self
            .image
            .data
            .iter()
            .map(|&b| f32::from(b) / 255.0)
            .collect();
        Ok(Tensor::from_vec(data, (1, h, w, 3), &model.device)?
            .permute((0, 3, 1, 2))?
            .contiguous()?
            .to_dtype(model.dtype)?)
    }
}

/// Called after each denoising step with the step number and a preview of the first item.
pub type PreviewFn<'a> = &'a dyn Fn(usize, &Rgb);

/// Runs `req` on `model`. `preview` gets the step number and a cheap preview of the first item.
pub fn generate(
    model: &Model,
    req: &Request,
    ctx: &JobCtx,
    preview: Option<PreviewFn<'_>>,
) -> Result<Vec<Generated>> {
    generate_controlled(model, req, &[], ctx, preview)
}

/// [`generate`] steered by ControlNets; their residuals add up, as diffusers'
/// `MultiControlNetModel` adds them.
pub fn generate_controlled(
    model: &Model,
    req: &Request,
    controls: &[Control<'_>],
    ctx: &JobCtx,
    preview: Option<PreviewFn<'_>>,
) -> Result<Vec<Generated>> {
    generate_referenced(model, req, controls, None, ctx, preview)
}

/// A reference image steering a generation through reference attention
/// ([`crate::reference`]): the character, style or palette to keep, at any size the VAE takes.
#[derive(Debug, Clone)]
pub struct ReferenceImage {
    pub image: Rgb,
    /// 0..1, diffusers' `style_fidelity`: at 1 the prompt leads, at 0 the reference does.
    pub style_fidelity: f64,
    /// Seeds the noise the reference is taken to each step's level with.
    pub seed: u64,
}

impl ReferenceImage {
    fn validate(&self, model: &Model) -> Result<()> {
        let f = model.config.vae.factor() as u32;
        let (w, h) = (self.image.width, self.image.height);
        if w == 0 || h == 0 || w % f != 0 || h % f != 0 {
            return Err(Error::InvalidRequest(format!(
                "the reference image is {w}×{h}: its sides must be non-zero multiples of {f}"
            )));
        }
        if !(0.0..=1.0).contains(&self.style_fidelity) {
            return Err(Error::InvalidRequest(format!(
                "reference style fidelity {} is out of range: use 0.0 to 1.0",
                self.style_fidelity
            )));
        }
        let unet_in = model.config.unet.in_channels;
        if unet_in != model.config.vae.latent_channels {
            return Err(Error::InvalidRequest(
                "reference attention needs a plain model, not an inpainting one: use the base model with a mask".into(),
            ));
        }
        Ok(())
    }
}

/// [`generate_controlled`] with an optional reference image steering every step through
/// reference attention; each step then runs the UNet twice (reference, then image).
pub fn generate_referenced(
    model: &Model,
    req: &Request,
    controls: &[Control<'_>],
    reference: Option<&ReferenceImage>,
    ctx: &JobCtx,
    preview: Option<PreviewFn<'_>>,
) -> Result<Vec<Generated>> {
    let factor = model.config.vae.factor() as u32;
    req.validate(factor)?;
    for c in controls {
        c.validate(req, model)?;
    }
    if let Some(r) = reference {
        r.validate(model)?;
    }
    let unet_in = model.config.unet.in_channels;
    let latent_c = model.config.vae.latent_channels;
    let inpaint_unet = unet_in == latent_c * 2 + 1;
    if inpaint_unet && req.mask.is_none() {
        return Err(Error::InvalidRequest(
            "this is an inpainting model: it needs --init-image and --mask".into(),
        ));
    }
    let b = req.batch;
    let seeds: Vec<u64> = (0..b as u64).map(|i| req.seed.wrapping_add(i)).collect();
    let (lh, lw) = (
        (req.height / factor) as usize,
        (req.width / factor) as usize,
    );

    ctx.progress("encode prompt", 0, 1);
    ctx.check()?;
    let mut chunks = model
        .chunk_count(&req.prompt)
        .max(model.chunk_count(&req.negative_prompt));
    if let Some(w) = &req.between {
        chunks = chunks
            .max(model.chunk_count(&w.prompt))
            .max(model.chunk_count(&w.negative_prompt));
    }
    // On a walk, each embedding is the slerp of the two keyframes' at the walk's point.
    let encode = |first: &str, second: Option<&str>| -> Result<crate::model::Conditioning> {
        let a = model.encode_prompt(first, chunks)?;
        match (second, &req.between) {
            (Some(p), Some(w)) => {
                let b = model.encode_prompt(p, chunks)?;
                Ok(crate::model::Conditioning {
                    context: slerp(&a.context, &b.context, w.t)?,
                    pooled: match (a.pooled, b.pooled) {
                        (Some(x), Some(y)) => Some(slerp(&x, &y, w.t)?),
                        (x, _) => x,
                    },
                })
            }
            _ => Ok(a),
        }
    };
    let cond = encode(&req.prompt, req.between.as_ref().map(|w| w.prompt.as_str()))?;
    let cfg = req.guidance > 1.0;
    let (context, pooled) = if cfg {
        let uncond = encode(
            &req.negative_prompt,
            req.between.as_ref().map(|w| w.negative_prompt.as_str()),
        )?;
        let ctx_t = Tensor::cat(
            &[
                uncond.context.repeat((b, 1, 1))?,
                cond.context.repeat((b, 1, 1))?,
            ],
            0,
        )?;
        let pooled = match (uncond.pooled, cond.pooled) {
            (Some(u), Some(c)) => Some(Tensor::cat(&[u.repeat((b, 1))?, c.repeat((b, 1))?], 0)?),
            _ => None,
        };
        (ctx_t, pooled)
    } else {
        (
            cond.context.repeat((b, 1, 1))?,
            cond.pooled.map(|p| p.repeat((b, 1))).transpose()?,
        )
    };
    let rows = if cfg { 2 * b } else { b };
    let added = match &pooled {
        Some(p) => model.added_cond(&p.narrow(0, 0, 1)?, req.width, req.height, rows)?,
        None => None,
    }
    .map(|mut a| {
        if let Some(p) = &pooled {
            a.text_embeds = p.clone();
        }
        a
    });
    ctx.progress("encode prompt", 1, 1);

    let strength = if req.init_image.is_some() {
        req.strength
    } else {
        1.0
    };
    let mut sampler = Sampler::new(
        req.scheduler,
        &model.config.scheduler,
        req.steps,
        strength,
        &seeds,
    )?;
    let mut noise = match &req.latents {
        Some(l) => {
            l.check([b, latent_c, lh, lw])?;
            l.tensor(&model.device, model.dtype)?
        }
        None => draw_noise(&seeds, (latent_c, lh, lw), model)?,
    };
    if let Some(w) = &req.between {
        let other: Vec<u64> = (0..b as u64).map(|i| w.seed.wrapping_add(i)).collect();
        let far = draw_noise(&other, (latent_c, lh, lw), model)?;
        // Each item's noise on its own sphere.
        let mut rows = Vec::with_capacity(b);
        for k in 0..b {
            rows.push(slerp(&noise.narrow(0, k, 1)?, &far.narrow(0, k, 1)?, w.t)?);
        }
        noise = Tensor::cat(&rows, 0)?;
    }

    // Init image latents, the latent mask and (for inpainting UNets) the extra input channels.
    let mut init_latents = None;
    let mut latent_mask = None;
    let mut extra = None;
    if let Some(img) = &req.init_image {
        ctx.progress("encode image", 0, 1);
        let pixels = rgb_to_tensor(img, model)?;
        let lat = model
            .vae
            .encode(&pixels, req.vae_tiling)?
            .repeat((b, 1, 1, 1))?;
        if let Some(m) = &req.mask {
            let mdata: Vec<f32> = m.data.iter().map(|&v| f32::from(v) / 255.0).collect();
            let mpix = Tensor::from_vec(
                mdata,
                (1, 1, m.height as usize, m.width as usize),
                &model.device,
            )?;
            let f = factor as usize;
            // Average over each latent cell, then binarise as diffusers does.
            let ml = mpix
                .reshape((1, 1, lh, f, lw, f))?
                .mean(5)?
                .mean(3)?
                .ge(0.5f32)?
                .to_dtype(model.dtype)?;
            if inpaint_unet {
                let keep = mpix.lt(0.5f32)?.to_dtype(model.dtype)?;
                let masked = pixels.broadcast_mul(&keep)?;
                let masked_lat = model.vae.encode(&masked, req.vae_tiling)?;
                let e = Tensor::cat(&[ml.clone(), masked_lat], 1)?.repeat((b, 1, 1, 1))?;
                extra = Some(e);
            }
            latent_mask = Some(ml.repeat((b, 1, 1, 1))?);
        }
        init_latents = Some(lat);
        ctx.progress("encode image", 1, 1);
    }

    let reference = match reference {
        Some(r) => {
            ctx.progress("encode reference", 0, 1);
            let lat = model
                .vae
                .encode(&rgb_to_tensor(&r.image, model)?, req.vae_tiling)?;
            ctx.progress("encode reference", 1, 1);
            Some((r, lat))
        }
        None => None,
    };
    let bank = Bank::new();

    let mut x = match (&init_latents, inpaint_unet && strength >= 1.0) {
        (Some(lat), false) => sampler.noise_latents(lat, &noise)?,
        _ => sampler.init_noise(&noise)?,
    };
    let total = sampler.steps();
    let control_images = controls
        .iter()
        .map(|c| -> Result<Tensor> {
            let t = c.tensor(model)?;
            Ok(if c.guess && cfg {
                t.repeat((b, 1, 1, 1))?
            } else {
                t
            })
        })
        .collect::<Result<Vec<_>>>()?;
    for i in 0..total {
        ctx.check()?;
        ctx.progress("denoise", i as u64, total as u64);
        let plain = sampler.scale_input(&x, i)?;
        let xin = match &extra {
            Some(e) => Tensor::cat(&[&plain, e], 1)?,
            None => plain.clone(),
        };
        let xin = if cfg {
            Tensor::cat(&[&xin, &xin], 0)?
        } else {
            xin
        };
        let t = Tensor::from_vec(
            vec![sampler.timestep(i) as f32; rows],
            (rows,),
            &model.device,
        )?;
        let mut residuals: Option<Residuals> = None;
        for (c, image) in controls.iter().zip(&control_images) {
            if !c.acts_at(i, total) {
                continue;
            }
            // A ControlNet reads the plain latents, never an inpainting UNet's extra channels.
            let r = if c.guess && cfg {
                let half = |t: &Tensor| t.narrow(0, b, b);
                let a = added
                    .as_ref()
                    .map(|a| -> Result<AddedCond> {
                        Ok(AddedCond {
                            text_embeds: half(&a.text_embeds)?,
                            time_ids: half(&a.time_ids)?,
                        })
                    })
                    .transpose()?;
                let r = c.net.forward(
                    &plain,
                    &t.narrow(0, 0, b)?,
                    &half(&context)?,
                    a.as_ref(),
                    image,
                    c.weight,
                    true,
                )?;
                r.zeros_like()?.cat_batch(&r)?
            } else {
                let input = if cfg {
                    Tensor::cat(&[&plain, &plain], 0)?
                } else {
                    plain.clone()
                };
                let img = image.repeat((rows, 1, 1, 1))?;
                c.net.forward(
                    &input,
                    &t,
                    &context,
                    added.as_ref(),
                    &img,
                    c.weight,
                    c.guess,
                )?
            };
            residuals = Some(match residuals {
                Some(acc) => acc.sum(&r)?,
                None => r,
            });
        }
        let read = match &reference {
            Some((r, lat)) => {
                // The reference noised to this step's level, as diffusers' `add_noise` does,
                // with noise of its own drawn per step.
                bank.clear()?;
                let (_, c, h, w) = lat.dims4()?;
                let n = draw_noise(&[r.seed.wrapping_add(i as u64)], (c, h, w), model)?;
                let xt = sampler.scale_input(&sampler.noise_latents_at(lat, &n, i)?, i)?;
                model.unet.forward_referenced(
                    &xt.repeat((rows, 1, 1, 1))?,
                    &t,
                    &context,
                    added.as_ref(),
                    None,
                    Some(Reference::Write(&bank)),
                )?;
                Some(Reference::Read {
                    bank: &bank,
                    style_fidelity: r.style_fidelity,
                    uncond: if cfg { b } else { 0 },
                })
            }
            None => None,
        };
        let out = model.unet.forward_referenced(
            &xin,
            &t,
            &context,
            added.as_ref(),
            residuals.as_ref(),
            read,
        )?;
        let out = if cfg {
            let u = out.narrow(0, 0, b)?;
            let c = out.narrow(0, b, b)?;
            (&u + ((c - &u)? * req.guidance)?)?
        } else {
            out
        };
        x = sampler.step(&out, i, &x)?;
        if let (Some(m), Some(lat), false) = (&latent_mask, &init_latents, inpaint_unet) {
            // Keep the unmasked region on the init image's trajectory.
            let kept = sampler.noise_latents_at(lat, &noise, i + 1)?;
            x = (x.broadcast_mul(m)? + kept.broadcast_mul(&(1.0 - m)?)?)?;
        }
        if let Some(p) = preview {
            let look = match &req.tiny_decoder {
                Some(d) => tensor_to_rgb(&d.decode(&x.narrow(0, 0, 1)?.to_dtype(DType::F32)?)?)?,
                None => latent_preview(&x)?,
            };
            p(i + 1, &look);
        }
    }
    ctx.check()?;
    ctx.progress("denoise", total as u64, total as u64);

    let mut out = Vec::with_capacity(b);
    for (k, seed) in seeds.iter().enumerate() {
        ctx.check()?;
        ctx.progress("decode", k as u64, b as u64);
        let latent = x.narrow(0, k, 1)?;
        let img = match &req.tiny_decoder {
            Some(d) => d.decode(&latent.to_dtype(DType::F32)?)?,
            None => model.vae.decode(&latent, req.vae_tiling)?,
        };
        out.push(Generated {
            image: tensor_to_rgb(&img)?,
            seed: *seed,
            latent,
        });
    }
    ctx.progress("decode", b as u64, b as u64);
    Ok(out)
}
