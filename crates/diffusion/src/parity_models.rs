//! Whole models against diffusers: the folders under `tests/fixtures/parity/` (tiny, random,
//! 16-bit, as `save_pretrained` wrote them) loaded by our loader, each network and the whole
//! pipeline compared with what diffusers computed from the same folder
//! (`scripts/fixtures parity`).
//!
//! Tolerances, relative to the reference's largest magnitude: text encoders and VAE 1e-4, one
//! UNet call 1e-3 (the end of a chain of convolutions and attention), the final latents of a
//! whole 4-step generation 1e-3, and the decoded image at least 40 dB PSNR. Each test prints
//! the worst error it saw, so a drift shows long before it fails.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use mintframe_jobs::JobCtx;

use crate::latents::Latents;
use crate::model::{LoadOptions, Model};
use crate::parity::rel_err;
use crate::pipeline::{Gray, Request, Rgb, generate};
use crate::scheduler::SchedulerKind;
use crate::train::files::read_safetensors;
use crate::unet::AddedCond;

/// How close each network must come, by precision.
#[derive(Debug, Clone, Copy)]
struct Tolerances {
    encoder: f32,
    vae: f32,
    unet: f32,
    latents: f32,
    min_psnr_db: f64,
}

const F32: Tolerances = Tolerances {
    encoder: 1e-4,
    vae: 1e-4,
    unet: 1e-3,
    latents: 1e-3,
    min_psnr_db: 40.0,
};

/// Our f16 path (weights and activations in f16, candle's kernels) against diffusers in f32:
/// the rounding of ten-bit mantissas, compounded through each network.
const F16: Tolerances = Tolerances {
    encoder: 2e-2,
    vae: 2e-2,
    unet: 2e-2,
    latents: 5e-2,
    min_psnr_db: 30.0,
};

struct Fixture {
    folder: PathBuf,
    io: BTreeMap<String, Tensor>,
    meta: HashMap<String, String>,
}

fn fixture(name: &str) -> Fixture {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/parity");
    let io_path = dir.join(format!("{name}_io.safetensors"));
    assert!(
        io_path.is_file() && dir.join(name).join("model_index.json").is_file(),
        "the parity fixture `{name}` is missing under {}: run `scripts/fixtures parity` to make it",
        dir.display()
    );
    let (io, meta) = read_safetensors(&io_path).expect("fixture");
    Fixture {
        folder: dir.join(name),
        io,
        meta,
    }
}

impl Fixture {
    fn t(&self, key: &str) -> &Tensor {
        self.io
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from the fixture"))
    }
    fn meta(&self, key: &str) -> &str {
        self.meta.get(key).map(String::as_str).expect("metadata")
    }
    fn num(&self, key: &str) -> f64 {
        self.meta(key).parse().expect("number")
    }
}

/// The worst error seen, printed at the end whatever the outcome.
struct Report(Vec<(String, f32)>);

impl Report {
    fn check(&mut self, what: &str, ours: &Tensor, theirs: &Tensor, tol: f32) {
        let e = rel_err(
            &ours.to_dtype(DType::F32).expect("f32"),
            &theirs.to_dtype(DType::F32).expect("f32"),
        );
        println!("{what}: relative error {e:.2e} (tolerance {tol:.0e})");
        self.0.push((what.to_owned(), e));
        assert!(e <= tol, "{what}: relative error {e:.3e} exceeds {tol:.0e}");
    }
}

fn psnr(ours: &Rgb, theirs: &Tensor) -> f64 {
    let reference: Vec<f32> = theirs.flatten_all().expect("flat").to_vec1().expect("vec");
    assert_eq!(reference.len(), ours.data.len(), "image sizes differ");
    let mse = ours
        .data
        .iter()
        .zip(&reference)
        .map(|(&a, &b)| {
            let d = f64::from(a) - f64::from((b * 255.0).round().clamp(0.0, 255.0));
            d * d
        })
        .sum::<f64>()
        / ours.data.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

fn to_u8(t: &Tensor) -> Vec<u8> {
    let v: Vec<f32> = t.flatten_all().expect("flat").to_vec1().expect("vec");
    v.into_iter()
        .map(|x| (x * 255.0).round().clamp(0.0, 255.0) as u8)
        .collect()
}

fn check_model(name: &str) {
    let fx = fixture(name);
    let model = Model::load_diffusers(&fx.folder, &LoadOptions::default()).expect("load");
    check_loaded(name, &fx, &model, F32);
}

fn check_loaded(name: &str, fx: &Fixture, model: &Model, tol: Tolerances) {
    let mut report = Report(Vec::new());
    let dev = Device::Cpu;

    // Text encoders on a long prompt's two 77-token chunks.
    for (i, te) in model.text.iter().enumerate() {
        let ids: Vec<Vec<u32>> = fx
            .t(&format!("te{i}.ids"))
            .to_dtype(DType::F32)
            .and_then(|t| t.to_vec2::<f32>())
            .expect("ids")
            .into_iter()
            .map(|r| r.into_iter().map(|x| x as u32).collect())
            .collect();
        let out = te.model.forward(&ids, &dev).expect("encode");
        report.check(
            &format!("text encoder {i}, last layer"),
            &out.last,
            fx.t(&format!("te{i}.last")),
            tol.encoder,
        );
        report.check(
            &format!("text encoder {i}, penultimate layer"),
            &out.penultimate,
            fx.t(&format!("te{i}.penultimate")),
            tol.encoder,
        );
        if let Some(p) = &out.pooled {
            report.check(
                &format!("text encoder {i}, pooled"),
                p,
                fx.t(&format!("te{i}.pooled")),
                tol.encoder,
            );
        }
    }

    // One UNet call, two items at two timesteps.
    let dt = model.dtype;
    let input = |key: &str| fx.t(key).to_dtype(dt).expect("dtype");
    let added = fx.io.get("unet.text_embeds").map(|_| AddedCond {
        text_embeds: input("unet.text_embeds"),
        time_ids: input("unet.time_ids"),
    });
    let out = model
        .unet
        .forward_timesteps(
            &input("unet.sample"),
            fx.t("unet.t"),
            &input("unet.context"),
            added.as_ref(),
        )
        .expect("unet");
    report.check("UNet", &out, fx.t("unet.out"), tol.unet);

    // The VAE both ways.
    let decoded = model
        .vae
        .decode(&input("vae.latent"), None)
        .expect("decode");
    report.check("VAE decode", &decoded, fx.t("vae.decoded"), tol.vae);
    let encoded = model.vae.encode(&input("vae.image"), None).expect("encode");
    let scale = model.config.vae.scaling_factor;
    let mean = (fx.t("vae.mean") * scale).expect("scale");
    report.check("VAE encode (mean)", &encoded, &mean, tol.vae);

    // Whole generations from the same noise.
    let (width, height) = (fx.num("width") as u32, fx.num("height") as u32);
    for (sampler, kind) in [
        ("ddim", SchedulerKind::Ddim),
        ("euler", SchedulerKind::Euler),
    ] {
        let mut req = Request {
            prompt: fx.meta("prompt").to_owned(),
            negative_prompt: fx.meta("negative_prompt").to_owned(),
            seed: 0,
            steps: fx.num("steps") as usize,
            guidance: fx.num("guidance"),
            width,
            height,
            scheduler: kind,
            batch: 1,
            strength: 1.0,
            latents: Some(
                Latents::from_tensor(fx.t(&format!("gen.{sampler}.noise"))).expect("latents"),
            ),
            ..Request::default()
        };
        if let Some(img) = fx.io.get("inpaint.image") {
            let hwc = img
                .squeeze(0)
                .and_then(|t| t.permute((1, 2, 0)))
                .expect("hwc");
            req.init_image = Some(Rgb {
                width,
                height,
                data: to_u8(&hwc),
            });
            req.mask = Some(Gray {
                width,
                height,
                data: to_u8(fx.t("inpaint.mask")),
            });
        }
        let g = generate(model, &req, &JobCtx::detached(), None).expect("generate");
        report.check(
            &format!("{sampler}: final latents"),
            &g[0].latent,
            fx.t(&format!("gen.{sampler}.latents")),
            tol.latents,
        );
        let db = psnr(&g[0].image, fx.t(&format!("gen.{sampler}.image")));
        println!(
            "{sampler}: image PSNR {db:.1} dB (at least {})",
            tol.min_psnr_db
        );
        assert!(db >= tol.min_psnr_db, "{sampler}: image PSNR {db:.1} dB");
    }
    let worst = report
        .0
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("checks");
    println!("{name}: worst relative error {:.2e} ({})", worst.1, worst.0);
}

#[test]
fn an_sd15_folder_matches_diffusers_in_every_network_and_end_to_end() {
    check_model("sd15");
}

#[test]
fn an_sd21_v_prediction_folder_matches_diffusers_in_every_network_and_end_to_end() {
    check_model("sd21");
}

#[test]
fn an_sdxl_folder_matches_diffusers_in_both_encoders_the_unet_and_end_to_end() {
    check_model("sdxl");
}

#[test]
fn a_9_channel_inpainting_folder_matches_diffusers_inpainting_pipeline() {
    check_model("sd15_inpaint");
}

#[test]
fn an_a1111_single_file_of_the_sd15_weights_matches_diffusers_like_its_folder() {
    // The fixture script checked its ldm names with diffusers' own single-file converters. A
    // tiny model is no preset, so its config comes from the sidecar a non-standard file needs.
    let fx = fixture("sd15");
    let single = fx.folder.with_file_name("sd15_single.safetensors");
    assert!(
        single.is_file(),
        "{} is missing: run `scripts/fixtures parity`",
        single.display()
    );
    let folder_model = Model::load_diffusers(&fx.folder, &LoadOptions::default()).expect("load");
    let dir = tempfile::tempdir().expect("tmp");
    let copy = dir.path().join("sd15_single.safetensors");
    std::fs::copy(&single, &copy).expect("copy");
    std::fs::write(
        copy.with_extension("config.json"),
        serde_json::to_vec(&folder_model.config).expect("config"),
    )
    .expect("sidecar");
    let model = Model::load_single_file(&copy, &LoadOptions::default()).expect("single file");
    check_loaded("sd15 single file", &fx, &model, F32);
}

#[test]
fn the_f16_path_matches_diffusers_f32_on_sd15_and_sdxl_within_its_stated_bound() {
    let opts = LoadOptions {
        dtype: DType::F16,
        ..LoadOptions::default()
    };
    for name in ["sd15", "sdxl"] {
        let fx = fixture(name);
        let model = Model::load_diffusers(&fx.folder, &opts).expect("load f16");
        check_loaded(&format!("{name} f16"), &fx, &model, F16);
    }
}

/// bf16 weights and bf16-rounded GEMM inputs (8-bit mantissas), summed in f32, against
/// diffusers in f32.
const BF16: Tolerances = Tolerances {
    encoder: 3e-2,
    vae: 3e-2,
    unet: 3e-2,
    latents: 6e-2,
    min_psnr_db: 28.0,
};

#[test]
fn the_bf16_path_matches_diffusers_f32_on_sd15_and_sdxl_within_its_stated_bound() {
    let opts = LoadOptions {
        dtype: DType::BF16,
        ..LoadOptions::default()
    };
    // Without AVX-512 BF16 the portable path runs in f32 and must meet f32's bounds.
    let (tol, what) = if mintframe_kernels::bf16::available() {
        (BF16, "bf16")
    } else {
        (F32, "bf16 asked, f32 run (no AVX-512 BF16)")
    };
    for name in ["sd15", "sdxl"] {
        let fx = fixture(name);
        let model = Model::load_diffusers(&fx.folder, &opts).expect("load bf16");
        assert_eq!(model.dtype, DType::F32, "activations stay f32");
        check_loaded(&format!("{name} {what}"), &fx, &model, tol);
    }
}

#[test]
fn a_latents_file_of_the_wrong_shape_dtype_or_name_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tmp");
    let write = |name: &str, t: Tensor| {
        let p = dir.path().join(format!("{name}.safetensors"));
        let mut m = BTreeMap::new();
        m.insert(
            if name == "misnamed" {
                "noise"
            } else {
                "latents"
            }
            .to_owned(),
            t,
        );
        crate::train::files::write_safetensors(&p, &m, Default::default()).expect("write");
        p
    };
    let dev = Device::Cpu;
    let ok = write(
        "ok",
        Tensor::zeros((2, 4, 8, 12), DType::F32, &dev).expect("t"),
    );
    let l = Latents::load(&ok).expect("load");
    assert!(l.check([2, 4, 8, 12]).is_ok());
    let e = l.check([1, 4, 8, 12]).expect_err("batch").to_string();
    assert!(e.contains("batch 1") && e.contains("[2, 4, 8, 12]"), "{e}");
    let e = l.check([2, 4, 12, 8]).expect_err("size").to_string();
    assert!(e.contains("--width"), "{e}");
    let three = write(
        "three",
        Tensor::zeros((4, 8, 12), DType::F32, &dev).expect("t"),
    );
    let e = Latents::load(&three).expect_err("3d").to_string();
    assert!(e.contains("[4, 8, 12]") && e.contains("batch"), "{e}");
    let ints = write(
        "ints",
        Tensor::zeros((1, 4, 8, 12), DType::I64, &dev).expect("t"),
    );
    let e = Latents::load(&ints).expect_err("dtype").to_string();
    assert!(e.contains("I64") && e.contains("floating point"), "{e}");
    let misnamed = write(
        "misnamed",
        Tensor::zeros((1, 4, 8, 12), DType::F32, &dev).expect("t"),
    );
    let e = Latents::load(&misnamed).expect_err("name").to_string();
    assert!(e.contains("`latents`") && e.contains("noise"), "{e}");
    let nan = write("nan", Tensor::new(&[[[[f32::NAN]]]], &dev).expect("t"));
    let e = Latents::load(&nan).expect_err("nan").to_string();
    assert!(e.contains("non-finite"), "{e}");
    // A request run with latents of another batch is refused before anything heavy.
    let model = Model::random(
        crate::tiny::tiny_config(false),
        crate::tiny::TINY_SEED,
        &LoadOptions::default(),
    )
    .expect("model");
    let req = Request {
        prompt: "a slime".into(),
        steps: 1,
        width: 64,
        height: 64,
        latents: Some(l),
        ..Request::default()
    };
    let e = generate(&model, &req, &JobCtx::detached(), None)
        .expect_err("shape")
        .to_string();
    assert!(e.contains("1×4×8×8"), "{e}");
}

#[test]
fn the_tiny_decoder_matches_diffusers_autoencoder_tiny() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/parity");
    let io_path = dir.join("taesd_io.safetensors");
    assert!(
        io_path.is_file(),
        "the TAESD fixture is missing under {}: run `scripts/fixtures taesd` to make it",
        dir.display()
    );
    let (io, _) = read_safetensors(&io_path).expect("fixture");
    let decoder = crate::taesd::TinyDecoder::load(&dir.join("taesd"), DType::F32, &Device::Cpu)
        .expect("load");
    assert_eq!(decoder.factor(), 8);
    let ours = decoder.decode(&io["in.latents"]).expect("decode");
    let mut report = Report(Vec::new());
    report.check("TAESD decode", &ours, &io["out.image"], F32.vae);
    // The weight file alone loads with the released shape assumed: here it is not the
    // released shape, so the first layer's width is refused by name.
    let err = crate::taesd::TinyDecoder::load(
        &dir.join("taesd/diffusion_pytorch_model.safetensors"),
        DType::F32,
        &Device::Cpu,
    )
    .expect_err("16 wide, not 64");
    assert!(err.to_string().contains("decoder.layers.0.weight"), "{err}");
}

/// PSNR of two images in [-1, 1] (peak-to-peak 2).
fn psnr_signed(a: &Tensor, b: &Tensor) -> f64 {
    let mse = (a - b)
        .and_then(|d| d.sqr())
        .and_then(|d| d.mean_all())
        .and_then(|m| m.to_scalar::<f32>())
        .expect("mse");
    10.0 * (4.0 / f64::from(mse).max(1e-20)).log10()
}

#[test]
fn a_tiled_vae_decode_keeps_as_close_to_the_whole_one_as_diffusers_tiling_does() {
    let fx = fixture("sd15");
    let (io, meta) = read_safetensors(&fx.folder.with_file_name("vae_tiling_io.safetensors"))
        .expect("the tiling fixture (scripts/fixtures vae_tiling)");
    let model = Model::load_diffusers(&fx.folder, &LoadOptions::default()).expect("load");
    let tiling = crate::vae::Tiling {
        tile: meta["tile"].parse().expect("tile"),
        overlap: meta["overlap"].parse().expect("overlap"),
    };
    let latent = &io["in.latent"];
    let whole = model.vae.decode(latent, None).expect("whole");
    let tiled = model.vae.decode(latent, Some(tiling)).expect("tiled");
    let mut report = Report(Vec::new());
    report.check("VAE decode, whole", &whole, &io["out.whole"], F32.vae);
    let theirs = psnr_signed(&io["out.tiled"], &io["out.whole"]);
    let ours = psnr_signed(&tiled, &io["out.whole"]);
    println!("tiled against whole: ours {ours:.1} dB, diffusers' {theirs:.1} dB");
    assert!(ours < 80.0, "the decode did not tile");
    assert!(
        ours >= theirs - 1.0,
        "our tiles blend worse than diffusers': {ours:.1} dB against {theirs:.1} dB"
    );
}
