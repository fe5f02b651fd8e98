//! A generation's ControlNets: each loaded and checked against the model's base, and its
//! condition made in Rust — a pose JSON drawn as the OpenPose annotator draws it, Canny or
//! line-art edges from any image — at the generation's size, with both recorded by hash.

use std::path::Path;

use mintframe_diffusion::controlnet::ControlNet;
use mintframe_diffusion::pipeline::Control;
use mintframe_diffusion::{LoadOptions, Model, Padding, Rgb};
use mintframe_media::pose::render::Canvas;
use mintframe_types::pose::Pose;
use mintframe_types::{ControlKind, ControlSpec, RecipeControl, WeightFile};

use crate::StudioError;
use crate::generate::sha256_hex;

/// Loaded ControlNets and their conditions, ready for the pipeline.
#[derive(Debug)]
pub(crate) struct Prepared {
    nets: Vec<ControlNet>,
    images: Vec<Rgb>,
    specs: Vec<ControlSpec>,
    pub(crate) recipe: Vec<RecipeControl>,
}

impl Prepared {
    pub(crate) fn controls(&self) -> Vec<Control<'_>> {
        self.nets
            .iter()
            .zip(&self.images)
            .zip(&self.specs)
            .map(|((net, image), s)| Control {
                net,
                image: image.clone(),
                weight: f64::from(s.weight),
                start: f64::from(s.start),
                end: f64::from(s.end),
                guess: s.guess,
            })
            .collect()
    }
}

fn canvas(img: &Rgb) -> Canvas {
    Canvas {
        width: img.width,
        height: img.height,
        data: img.data.clone(),
    }
}

/// The condition `spec` names, `width`×`height`.
pub(crate) fn condition(spec: &ControlSpec, width: u32, height: u32) -> Result<Rgb, StudioError> {
    let path = Path::new(&spec.image);
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let c = if is_json {
        if spec.kind != ControlKind::Pose {
            return Err(StudioError::Settings(format!(
                "{}: a pose JSON is a condition for --control-kind pose, not {}",
                spec.image, spec.kind
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|source| StudioError::Io {
            action: "cannot read",
            path: path.to_owned(),
            source,
        })?;
        let pose: Pose = serde_json::from_str(&text).map_err(|e| {
            StudioError::Settings(format!(
                "{}: not a pose (`{{\"joints\": [...]}}`): {e}",
                spec.image
            ))
        })?;
        pose.validate(&spec.image)
            .map_err(|e| StudioError::Settings(e.to_string()))?;
        mintframe_media::pose::render::openpose(&pose, width, height)
    } else {
        let img = crate::generate::read_rgb(path)?;
        if (img.width, img.height) != (width, height) {
            return Err(StudioError::Settings(format!(
                "the control image {} is {}×{} but the generation is {width}×{height}; give an image of the generation's size",
                spec.image, img.width, img.height
            )));
        }
        let c = canvas(&img);
        match spec.kind {
            ControlKind::Pose => c,
            ControlKind::Canny => mintframe_media::pose::edges::canny(&c, 100, 200),
            ControlKind::Lineart => mintframe_media::pose::edges::lineart(&c, 4.0),
        }
    };
    Ok(Rgb {
        width: c.width,
        height: c.height,
        data: c.data,
    })
}

/// Loads every ControlNet (on the model's device and precision, with its padding, so a
/// seamless generation's residuals wrap as its UNet does) and makes its condition.
pub(crate) fn prepare(
    specs: &[ControlSpec],
    width: u32,
    height: u32,
    model: &Model,
    padding: Padding,
) -> Result<Prepared, StudioError> {
    let mut p = Prepared {
        nets: Vec::new(),
        images: Vec::new(),
        specs: specs.to_vec(),
        recipe: Vec::new(),
    };
    for s in specs {
        let image = condition(s, width, height)?;
        let net = ControlNet::load(
            Path::new(&s.controlnet),
            &LoadOptions {
                dtype: model.dtype,
                device: model.device.clone(),
                padding,
                loras: Vec::new(),
                train: None,
            },
        )?;
        net.check_base(&model.config.unet)?;
        let (sha, _) = mintframe_diffusion::manager::sha256_file(
            &net.source,
            &mintframe_jobs::JobCtx::detached(),
            "hash ControlNet",
        )?;
        p.recipe.push(RecipeControl {
            controlnet: WeightFile {
                path: net
                    .source
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: sha,
            },
            kind: s.kind,
            condition_sha256: sha256_hex(&image.data),
            weight: s.weight,
            start: s.start,
            end: s.end,
            guess: s.guess,
        });
        p.nets.push(net);
        p.images.push(image);
    }
    Ok(p)
}
