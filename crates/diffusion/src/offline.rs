//! `mintframe-sprites`, the model a fresh install draws with: a small SD 1.x-layout model
//! (a CLIP-tokenizer text encoder, a UNet and an autoencoder for 32×32 sprites) that the project
//! trained from scratch on procedurally drawn item sprites (`scripts/offline-model/`). Its
//! diffusers folder is compiled into the binary and written out on first use, like `tiny-sd`,
//! so it works with no download and every install holds the same bytes.

use std::fs;
use std::path::Path;

use crate::error::{Result, io};
use crate::manager::{Defaults, Layout, License, Manifest, ManifestFile};
use crate::model::Arch;

pub const SPRITES_ID: &str = "mintframe-sprites";

/// The model `generate`, `sprite` and the studio's Generate use when none is named.
pub const DEFAULT_MODEL: &str = SPRITES_ID;

macro_rules! embedded {
    ($($path:literal => $sha:literal),* $(,)?) => {
        [$(($path, include_bytes!(concat!("../../../models/mintframe-sprites/", $path)).as_slice(), $sha)),*]
    };
}

/// The diffusers folder: each file's path, bytes and sha256 (the manifest's pinned hashes,
/// written out rather than hashed at every start; a test checks them against the bytes).
const FILES: [(&str, &[u8], &str); 9] = embedded![
    "model_index.json" => "a936359572a780529531636d56c8bf6339bdee2bde97961a85c25b173a6b7d6e",
    "scheduler/scheduler_config.json" => "aa2bd6954ccf63c2e31189633e05951a65e11082ff5e9a3f1ee9bfa762682ad5",
    "tokenizer/tokenizer_config.json" => "8264b45b4e195bf5ae74fcb87b043d765630c3671e56e8e1b03c423dc362ef83",
    "text_encoder/config.json" => "1c7e820da0c657d4e22f2e5d0717075dc79802e06fef75f8be50a540ed29cc16",
    "text_encoder/model.safetensors" => "43bf731d8d03f6a7c1440711bb53d8686b882ffd542a7d2667b1f001828b42f5",
    "unet/config.json" => "a7ab51051f7ff634b8bba9516e841cec18fe3bc685b70da38d77916c489bceda",
    "unet/diffusion_pytorch_model.safetensors" => "1e613c650497d32c48f16b43884f287cad2169d9acaafd268799fdb611904af9",
    "vae/config.json" => "d1722363921efac584a14d649638df3ec2f0841907f56960ef4c6ce101a108f7",
    "vae/diffusion_pytorch_model.safetensors" => "5e3f422f98892e58ae99d42991a036ac74ad156177e1b9f49912d97d62ac77a6",
];

/// The files as the manifest lists them, with their pinned hashes.
pub(crate) fn pinned() -> Vec<ManifestFile> {
    FILES
        .iter()
        .map(|(path, _, sha)| ManifestFile {
            path: (*path).to_owned(),
            sha256: Some((*sha).to_owned()),
        })
        .collect()
}

pub fn manifest() -> Manifest {
    Manifest {
        id: SPRITES_ID.into(),
        name: "Mintframe Sprites (offline)".into(),
        description: "Mintframe's own small model, trained from scratch on procedural pixel-art \
                      items: potions, swords, shields, gems, coins, keys, chests, hearts, \
                      mushrooms and slimes, in ten colours, 32×32. Built in, no download. It \
                      draws only those items; for anything else install a full model."
            .into(),
        arch: Arch::Sd1,
        layout: Layout::Diffusers,
        source: None,
        files: pinned(),
        license: License {
            id: "mit".into(),
            name: "MIT".into(),
            url: "https://opensource.org/license/mit".into(),
            commercial: true,
            summary: "Trained by the Mintframe project on sprites its own code draws; no \
                      third-party data or weights."
                .into(),
        },
        // Measured with the sprite checker over 20 seeds: plain Euler leaves cleaner backgrounds
        // than the ancestral sampler, whose fresh noise at every step this small model does not
        // fully remove.
        defaults: Defaults {
            scheduler: crate::SchedulerKind::Euler,
            steps: 30,
            guidance: 5.0,
            width: 32,
            height: 32,
        },
        builtin: true,
    }
}

/// Writes the diffusers folder into `dir` (which must not exist yet).
pub fn write(dir: &Path) -> Result<()> {
    for (rel, bytes, _) in FILES {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::write(&p, bytes).map_err(io(&p))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clip::{PadToken, PromptTokenizer};
    use crate::model::{LoadOptions, Model};
    use sha2::{Digest, Sha256};

    /// The ids the training script fed its text encoder (its own tokenizer, in Python, over the
    /// same merge list) for a spread of its captions: the engine must make the same ones, or the
    /// model would read other words at generation time than it learnt.
    #[test]
    fn the_engine_tokenizes_the_training_captions_as_training_did() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures/offline-model/tokens.json");
        let text = fs::read_to_string(&path).expect("tokens.json");
        let want: std::collections::BTreeMap<String, Vec<u32>> =
            serde_json::from_str(&text).expect("json");
        assert!(want.len() >= 40, "{}", want.len());
        let tok = PromptTokenizer::new();
        for (caption, ids) in &want {
            let got = tok.chunks(caption, PadToken::Eos, 1);
            assert_eq!(got.len(), 1, "{caption:?}");
            assert_eq!(&got[0], ids, "{caption:?}");
        }
    }

    #[test]
    fn the_built_in_folder_loads_as_an_sd1_model_for_32_pixel_sprites() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join(SPRITES_ID);
        write(&dir).expect("write");
        let model = Model::load_diffusers(&dir, &LoadOptions::default()).expect("load");
        assert_eq!(model.config.arch, Arch::Sd1);
        assert_eq!(model.config.vae.factor(), 2);
        assert_eq!(model.config.unet.cross_attention_dim, 64);
        let m = manifest();
        assert_eq!((m.defaults.width, m.defaults.height), (32, 32));
        assert_eq!(m.files.len(), FILES.len());
        for (path, bytes, sha) in FILES {
            assert_eq!(
                hex::encode(Sha256::digest(bytes)),
                sha,
                "{path}: update its pinned hash"
            );
        }
        // Small enough to commit and to compile in.
        let bytes: usize = FILES.iter().map(|(_, b, _)| b.len()).sum();
        assert!(bytes <= 30 << 20, "{bytes} bytes");
    }
}
