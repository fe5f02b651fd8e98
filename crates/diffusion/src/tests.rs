//! Every pipeline and scheduler on the tiny models, weights in every layout, and each bad input.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use mintframe_jobs::{CancelToken, JobCtx};
use sha2::{Digest, Sha256};

use crate::keymap::KeyMap;
use crate::pipeline::{Gray, Rgb};
use crate::tiny::{TINY_SEED, write_diffusers, write_lora, write_single_file};
use crate::weights::Weights;
use crate::*;

fn tiny_dir(tmp: &Path) -> PathBuf {
    let dir = tmp.join("tiny-sd");
    write_diffusers(&dir, TINY_SEED, false).expect("write tiny");
    dir
}

fn request(seed: u64) -> Request {
    Request {
        prompt: "a knight in silver armour, pixel art".into(),
        negative_prompt: "blurry".into(),
        seed,
        steps: 3,
        guidance: 7.0,
        width: 64,
        height: 64,
        scheduler: SchedulerKind::EulerA,
        ..Request::default()
    }
}

fn run(model: &Model, req: &Request) -> Vec<Generated> {
    generate(model, req, &JobCtx::detached(), None).expect("generate")
}

fn png(g: &Generated) -> Vec<u8> {
    pngio::encode_png(&g.image, &[("parameters", "x".into())]).expect("png")
}

fn sha(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).expect("read")))
}

#[test]
fn tiny_model_is_written_deterministically() {
    let a = tempfile::tempdir().expect("tmp");
    let b = tempfile::tempdir().expect("tmp");
    let da = tiny_dir(a.path());
    let db = tiny_dir(b.path());
    for f in [
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
        "unet/config.json",
    ] {
        assert_eq!(sha(&da.join(f)), sha(&db.join(f)), "{f}");
    }
}

#[test]
fn same_recipe_same_bytes_other_seed_other_image() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let a = run(&model, &request(7));
    let b = run(&model, &request(7));
    let c = run(&model, &request(8));
    assert_eq!(png(&a[0]), png(&b[0]));
    assert_ne!(a[0].image.data, c[0].image.data);
    assert_eq!(a[0].image.width, 64);
    assert_eq!(a[0].image.data.len(), 64 * 64 * 3);
}

#[test]
fn every_scheduler_runs_and_differs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let mut outs = Vec::new();
    for &kind in SchedulerKind::ALL {
        let req = Request {
            scheduler: kind,
            ..request(3)
        };
        let out = run(&model, &req);
        assert_eq!(out.len(), 1);
        outs.push(out[0].image.data.clone());
    }
    for i in 0..outs.len() {
        for j in i + 1..outs.len() {
            assert_ne!(
                outs[i], outs[j],
                "schedulers {i} and {j} gave the same image"
            );
        }
    }
}

#[test]
fn a_batch_records_one_seed_per_item() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let out = run(
        &model,
        &Request {
            batch: 3,
            ..request(100)
        },
    );
    assert_eq!(
        out.iter().map(|g| g.seed).collect::<Vec<_>>(),
        vec![100, 101, 102]
    );
    assert_ne!(out[0].image.data, out[1].image.data);
}

#[test]
fn img2img_and_both_kinds_of_inpainting() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let init = Rgb {
        width: 64,
        height: 64,
        data: (0..64 * 64 * 3).map(|i| (i % 251) as u8).collect(),
    };
    let low = run(
        &model,
        &Request {
            init_image: Some(init.clone()),
            strength: 0.3,
            ..request(5)
        },
    );
    let high = run(
        &model,
        &Request {
            init_image: Some(init.clone()),
            strength: 0.9,
            ..request(5)
        },
    );
    assert_ne!(low[0].image.data, high[0].image.data);
    // Left half repainted, right half kept.
    let mask = Gray {
        width: 64,
        height: 64,
        data: (0..64 * 64)
            .map(|i| if i % 64 < 32 { 255 } else { 0 })
            .collect(),
    };
    let inpainted = run(
        &model,
        &Request {
            init_image: Some(init.clone()),
            mask: Some(mask.clone()),
            strength: 1.0,
            ..request(5)
        },
    );
    assert_eq!(inpainted[0].image.data.len(), init.data.len());

    let dir9 = tmp.path().join("tiny-inpaint");
    write_diffusers(&dir9, TINY_SEED, true).expect("write inpaint");
    let m9 = Model::load_diffusers(&dir9, &LoadOptions::default()).expect("load inpaint");
    assert_eq!(m9.config.unet.in_channels, 9);
    let out = run(
        &m9,
        &Request {
            init_image: Some(init),
            mask: Some(mask),
            strength: 1.0,
            ..request(5)
        },
    );
    assert_eq!(out[0].image.width, 64);
    let err = generate(&m9, &request(1), &JobCtx::detached(), None).expect_err("needs a mask");
    assert!(err.to_string().contains("inpainting model"), "{err}");
}

#[test]
fn prompts_longer_than_77_tokens_are_chunked_not_dropped() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let base = "knight ".repeat(80);
    let a = run(
        &model,
        &Request {
            prompt: format!("{base} red cape"),
            ..request(9)
        },
    );
    let b = run(
        &model,
        &Request {
            prompt: format!("{base} blue cape"),
            ..request(9)
        },
    );
    // The words after token 75 change the image: the second chunk is used.
    assert_ne!(a[0].image.data, b[0].image.data);
    assert_eq!(model.chunk_count(&base), 2);
}

#[test]
fn single_file_checkpoint_matches_the_diffusers_folder() {
    let tmp = tempfile::tempdir().expect("tmp");
    let folder =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let file = tmp.path().join("tiny.safetensors");
    write_single_file(&file, TINY_SEED).expect("single");
    let single = Model::load_single_file(&file, &LoadOptions::default()).expect("load single");
    let req = request(11);
    assert_eq!(run(&folder, &req)[0].image, run(&single, &req)[0].image);
}

#[test]
fn lora_merge_is_w_plus_s_up_down() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tiny_dir(tmp.path());
    let lora_path = tmp.path().join("tiny-lora.safetensors");
    let pairs = write_lora(&lora_path, 99, 4).expect("lora");
    let unet = dir.join("unet/diffusion_pytorch_model.safetensors");
    let name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight";
    let kohya = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q";
    let base = Arc::new(
        Weights::from_files(
            std::slice::from_ref(&unet),
            KeyMap::Diffusers,
            "t",
            DType::F32,
            &Device::Cpu,
        )
        .expect("w"),
    );
    let merged = Arc::new(
        Weights::from_files(&[unet], KeyMap::Diffusers, "t", DType::F32, &Device::Cpu)
            .expect("w")
            .with_loras(
                "lora_unet_",
                vec![weights::Lora::load(&lora_path, 0.8).expect("lora")],
            ),
    );
    let w = base.root().get(&[32, 32], name).expect("w");
    let w2 = merged.root().get(&[32, 32], name).expect("w2");
    let (up, down) = &pairs[kohya];
    let expect = (w + (up.matmul(down).expect("mm") * 0.8).expect("s")).expect("add");
    let d = (expect - w2)
        .expect("d")
        .abs()
        .expect("a")
        .max_all()
        .expect("m")
        .to_scalar::<f32>()
        .expect("s");
    assert!(d < 1e-6, "{d}");

    let opts = LoadOptions {
        loras: vec![(lora_path.clone(), 1.0)],
        ..LoadOptions::default()
    };
    let with = Model::load_diffusers(&dir, &opts).expect("load with lora");
    let without = Model::load_diffusers(&dir, &LoadOptions::default()).expect("load");
    assert_ne!(
        run(&with, &request(1))[0].image,
        run(&without, &request(1))[0].image
    );
}

#[test]
fn a_lora_for_another_architecture_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tiny_dir(tmp.path());
    // Layer names of an SDXL LoRA: the tiny SD1 model has no down_blocks.2.
    let path = tmp.path().join("xl-lora.safetensors");
    let dev = Device::Cpu;
    let mut t = std::collections::BTreeMap::new();
    let base = "lora_unet_down_blocks_2_attentions_1_transformer_blocks_9_attn2_to_k";
    t.insert(
        format!("{base}.lora_up.weight"),
        Tensor::zeros((1280, 4), DType::F32, &dev).expect("t"),
    );
    t.insert(
        format!("{base}.lora_down.weight"),
        Tensor::zeros((4, 2048), DType::F32, &dev).expect("t"),
    );
    tiny::save_safetensors(&path, &t).expect("save");
    let opts = LoadOptions {
        loras: vec![(path.clone(), 1.0)],
        ..LoadOptions::default()
    };
    let err = Model::load_diffusers(&dir, &opts).expect_err("must refuse");
    let msg = err.to_string();
    assert!(
        msg.contains("another architecture") && msg.contains("xl-lora"),
        "{msg}"
    );
}

#[test]
fn corrupt_truncated_missing_and_misshapen_weights_are_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tiny_dir(tmp.path());
    let opts = LoadOptions::default();

    // Truncated: half the UNet file.
    let unet = dir.join("unet/diffusion_pytorch_model.safetensors");
    let full = std::fs::read(&unet).expect("read");
    std::fs::write(&unet, &full[..full.len() / 2]).expect("truncate");
    let msg = Model::load_diffusers(&dir, &opts)
        .expect_err("truncated")
        .to_string();
    assert!(
        msg.contains("diffusion_pytorch_model.safetensors") && msg.contains("truncated or corrupt"),
        "{msg}"
    );

    // Garbage header.
    std::fs::write(&unet, b"\xff\xff\xff\xff\xff\xff\xff\x7fnot json").expect("garbage");
    let msg = Model::load_diffusers(&dir, &opts)
        .expect_err("corrupt")
        .to_string();
    assert!(msg.contains("not a valid safetensors"), "{msg}");
    std::fs::write(&unet, &full).expect("restore");

    // A missing component.
    let vae = dir.join("vae/diffusion_pytorch_model.safetensors");
    std::fs::rename(&vae, dir.join("vae.bak")).expect("hide");
    let msg = Model::load_diffusers(&dir, &opts)
        .expect_err("missing")
        .to_string();
    assert!(
        msg.contains("vae/diffusion_pytorch_model.safetensors") && msg.contains("models pull"),
        "{msg}"
    );
    std::fs::rename(dir.join("vae.bak"), &vae).expect("restore");

    // A pickle in its place is refused, not read.
    std::fs::write(dir.join("vae/diffusion_pytorch_model.bin"), b"pickle").expect("bin");
    std::fs::rename(&vae, dir.join("vae.bak")).expect("hide");
    let msg = Model::load_diffusers(&dir, &opts)
        .expect_err("pickle")
        .to_string();
    assert!(msg.contains("pickle") && msg.contains(".bin"), "{msg}");
    std::fs::rename(dir.join("vae.bak"), &vae).expect("restore");
    assert!(matches!(
        weights::refuse_pickle(Path::new("model.ckpt")),
        Err(Error::PickleRefused { .. })
    ));

    // Wrong shape: the config says 48 channels, the tensors have 32.
    let cfg_path = dir.join("unet/config.json");
    let cfg = std::fs::read_to_string(&cfg_path).expect("cfg");
    let mut v: serde_json::Value = serde_json::from_str(&cfg).expect("json");
    v["block_out_channels"] = serde_json::json!([48, 64]);
    std::fs::write(&cfg_path, v.to_string()).expect("write");
    let msg = Model::load_diffusers(&dir, &opts)
        .expect_err("shape")
        .to_string();
    assert!(
        msg.contains("conv_in.weight")
            && msg.contains("[32, 4, 3, 3]")
            && msg.contains("[48, 4, 3, 3]"),
        "{msg}"
    );
}

#[test]
fn bad_sizes_masks_and_cancellation() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let msg = generate(
        &model,
        &Request {
            width: 100,
            ..request(1)
        },
        &JobCtx::detached(),
        None,
    )
    .expect_err("size")
    .to_string();
    assert!(
        msg.contains("width 100 is not divisible by 8") && msg.contains("96"),
        "{msg}"
    );

    let init = Rgb {
        width: 64,
        height: 64,
        data: vec![128; 64 * 64 * 3],
    };
    let mask = Gray {
        width: 32,
        height: 64,
        data: vec![255; 32 * 64],
    };
    let msg = generate(
        &model,
        &Request {
            init_image: Some(init),
            mask: Some(mask),
            ..request(1)
        },
        &JobCtx::detached(),
        None,
    )
    .expect_err("mask")
    .to_string();
    assert!(
        msg.contains("mask is 32×64") && msg.contains("64×64"),
        "{msg}"
    );

    // Cancel as the second denoising step starts: no image comes back.
    let token = CancelToken::new();
    let t2 = token.clone();
    let ctx = JobCtx::new(token, move |p| {
        if p.stage == "denoise" && p.step == 1 {
            t2.cancel();
        }
    });
    let err = generate(&model, &request(1), &ctx, None).expect_err("cancelled");
    assert!(matches!(err, Error::Cancelled(_)), "{err}");
}

#[test]
fn previews_arrive_once_per_step() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let seen = std::sync::Mutex::new(Vec::new());
    let cb = |step: usize, img: &Rgb| {
        seen.lock().expect("lock").push((step, img.width));
    };
    generate(&model, &request(2), &JobCtx::detached(), Some(&cb)).expect("gen");
    assert_eq!(*seen.lock().expect("lock"), vec![(1, 8), (2, 8), (3, 8)]);
}

#[test]
fn with_a_tiny_decoder_the_previews_show_the_image_at_its_full_size() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let dec = tmp.path().join("taesd");
    crate::tiny::write_tiny_decoder(&dec, 8, 3).expect("write");
    let mut req = request(2);
    req.tiny_decoder = Some(std::sync::Arc::new(
        crate::taesd::TinyDecoder::load(&dec, candle_core::DType::F32, &candle_core::Device::Cpu)
            .expect("tiny decoder"),
    ));
    let seen = std::sync::Mutex::new(Vec::new());
    let cb = |step: usize, img: &Rgb| {
        seen.lock().expect("lock").push((step, img.width));
    };
    let out = generate(&model, &req, &JobCtx::detached(), Some(&cb)).expect("gen");
    let width = out[0].image.width;
    assert_eq!(width, req.width);
    assert_eq!(
        *seen.lock().expect("lock"),
        vec![(1, width), (2, width), (3, width)]
    );
    let plain = run(&model, &request(2));
    assert_ne!(
        plain[0].image, out[0].image,
        "the VAE decoded, not the tiny decoder"
    );
}

#[test]
fn seamless_padding_changes_the_image() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tiny_dir(tmp.path());
    let plain = Model::load_diffusers(&dir, &LoadOptions::default()).expect("load");
    let tiled = Model::load_diffusers(
        &dir,
        &LoadOptions {
            padding: Padding::CIRCULAR,
            ..LoadOptions::default()
        },
    )
    .expect("load");
    assert_ne!(
        run(&plain, &request(4))[0].image,
        run(&tiled, &request(4))[0].image
    );
}

#[test]
fn png_carries_its_text_chunks() {
    let img = Rgb {
        width: 2,
        height: 1,
        data: vec![1, 2, 3, 4, 5, 6],
    };
    let bytes = pngio::encode_png(
        &img,
        &[
            ("parameters", "knight\nSteps: 3".into()),
            ("mintframe", "{\"prompt\":\"騎士\"}".into()),
        ],
    )
    .expect("png");
    let chunks = pngio::read_text_chunks(&bytes).expect("read");
    assert!(chunks.contains(&("parameters".into(), "knight\nSteps: 3".into())));
    assert!(chunks.contains(&("mintframe".into(), "{\"prompt\":\"騎士\"}".into())));
}

/// f16 runs end to end (the causal text mask is f32 whatever the model's dtype), and agrees
/// with f32 closely: the same weights rounded, the same seeds.
#[test]
fn f16_generates_and_stays_close_to_f32() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tiny_dir(tmp.path());
    let load = |dtype| {
        Model::load_diffusers(
            &dir,
            &LoadOptions {
                dtype,
                ..LoadOptions::default()
            },
        )
        .expect("load")
    };
    let req = Request {
        steps: 2,
        ..request(11)
    };
    let half = run(&load(DType::F16), &req);
    let full = run(&load(DType::F32), &req);
    let diff: f64 = half[0]
        .image
        .data
        .iter()
        .zip(&full[0].image.data)
        .map(|(a, b)| f64::from((i16::from(*a) - i16::from(*b)).abs()))
        .sum::<f64>()
        / full[0].image.data.len() as f64;
    assert!(diff < 8.0, "mean absolute difference {diff} per channel");
}

#[test]
fn a_manifest_file_name_with_dots_inside_stays_inside_and_a_dot_dot_component_is_refused() {
    use crate::manager::parse_manifest;
    let base = include_str!("../../../models/sd15.json");
    let path = std::path::Path::new("m.json");
    let with = |file: &str| {
        let mut v: serde_json::Value = serde_json::from_str(base).expect("json");
        v["files"][0]["path"] = serde_json::Value::String(file.to_owned());
        v.to_string()
    };
    // What the fuzzer found: "text_e....ns" is a name, not a way out (the harness was wrong).
    assert!(parse_manifest(&with("unet/text_e....ns.json"), path).is_ok());
    for bad in [
        "../x.json",
        "unet/../../x.json",
        "/etc/x.json",
        "a\\b.json",
        "",
    ] {
        let e = parse_manifest(&with(bad), path).expect_err(bad).to_string();
        assert!(e.contains("leaves the model folder"), "{bad}: {e}");
    }
    // Every input a fuzzer kept as a regression parses or is refused; none panics.
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/manifest");
    for e in std::fs::read_dir(dir).expect("regressions").flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        if let Ok(m) = parse_manifest(&text, path) {
            assert!(
                m.files
                    .iter()
                    .all(|f| !f.path.split('/').any(|c| c == ".."))
            );
        }
    }
}

/// Deterministic values in about [-1, 1] (no RNG state shared with other tests).
fn wavy(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
}

/// A circular shift by `k` along `dim` (torch.roll).
fn roll(t: &Tensor, dim: usize, k: usize) -> Tensor {
    let n = t.dim(dim).expect("dim");
    let k = k % n;
    if k == 0 {
        return t.clone();
    }
    Tensor::cat(
        &[
            t.narrow(dim, n - k, k).expect("narrow"),
            t.narrow(dim, 0, n - k).expect("narrow"),
        ],
        dim,
    )
    .expect("cat")
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .expect("sub")
        .abs()
        .expect("abs")
        .flatten_all()
        .expect("flat")
        .max(0)
        .expect("max")
        .to_scalar::<f32>()
        .expect("scalar")
}

fn tiny_with(padding: Padding) -> Model {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tiny_dir(tmp.path());
    Model::load_diffusers(
        &dir,
        &LoadOptions {
            padding,
            ..LoadOptions::default()
        },
    )
    .expect("load")
}

#[test]
fn with_circular_padding_the_vae_decoder_commutes_with_circular_shifts_of_the_latent() {
    let model = tiny_with(Padding::CIRCULAR);
    let z = wavy(&[1, 4, 6, 5], 7);
    let image = model.vae.decode(&z, None).expect("decode");
    assert_eq!(image.dims(), &[1, 3, 48, 40]);
    // Shift k latents → the image moves 8k pixels, on either axis and both.
    for (dim, k) in [(3, 1), (3, 3), (2, 2), (2, 5)] {
        let shifted = model.vae.decode(&roll(&z, dim, k), None).expect("decode");
        let d = max_diff(&shifted, &roll(&image, dim, 8 * k));
        assert!(d < 1e-4, "axis {dim}, shift {k}: {d}");
    }
    let both = model
        .vae
        .decode(&roll(&roll(&z, 2, 1), 3, 2), None)
        .expect("decode");
    assert!(max_diff(&both, &roll(&roll(&image, 2, 8), 3, 16)) < 1e-4);

    // Wrapping one axis only: shifts along it commute, along the other they do not.
    let x_only = tiny_with(Padding {
        circular_x: true,
        circular_y: false,
    });
    let image = x_only.vae.decode(&z, None).expect("decode");
    let along = x_only.vae.decode(&roll(&z, 3, 2), None).expect("decode");
    assert!(max_diff(&along, &roll(&image, 3, 16)) < 1e-4);
    let across = x_only.vae.decode(&roll(&z, 2, 2), None).expect("decode");
    assert!(max_diff(&across, &roll(&image, 2, 16)) > 1e-3);
    // And with zero padding nothing commutes: the property tests the padding, not the data.
    let plain = tiny_with(Padding::ZEROS);
    let image = plain.vae.decode(&z, None).expect("decode");
    let moved = plain.vae.decode(&roll(&z, 3, 1), None).expect("decode");
    assert!(max_diff(&moved, &roll(&image, 3, 8)) > 1e-3);
}

#[test]
fn with_circular_padding_the_unet_commutes_with_shifts_by_multiples_of_its_downsampling() {
    let model = tiny_with(Padding::CIRCULAR);
    // Two blocks, one downsample: shifts by multiples of 2 latents commute.
    let factor = 1 << (model.config.unet.block_out_channels.len() - 1);
    let x = wavy(&[1, 4, 8, 12], 3);
    let ctx = wavy(&[1, 77, 32], 5);
    let eps = model.unet.forward(&x, 500.0, &ctx, None).expect("unet");
    for (dim, k) in [(3, factor), (3, 3 * factor), (2, factor), (2, 2 * factor)] {
        let shifted = model
            .unet
            .forward(&roll(&x, dim, k), 500.0, &ctx, None)
            .expect("unet");
        let d = max_diff(&shifted, &roll(&eps, dim, k));
        assert!(d < 1e-4, "axis {dim}, shift {k}: {d}");
    }
    let plain = tiny_with(Padding::ZEROS);
    let eps = plain.unet.forward(&x, 500.0, &ctx, None).expect("unet");
    let moved = plain
        .unet
        .forward(&roll(&x, 3, factor), 500.0, &ctx, None)
        .expect("unet");
    assert!(max_diff(&moved, &roll(&eps, 3, factor)) > 1e-3);
}

/// LayerDiffuse's attention file in its forge layout (`diffusion_model.<ldm>.weight::lora::N`)
/// for the tiny model's first attention: one with 0 pairs for `attn2.to_k`'s text context of
/// `context` wide.
fn write_forge_lora(path: &Path, context: usize) {
    let dev = Device::Cpu;
    let mut t = std::collections::BTreeMap::new();
    let base = "diffusion_model.input_blocks.1.1.transformer_blocks.0";
    for (layer, cin) in [
        ("attn1.to_q", 32),
        ("attn1.to_v", 32),
        ("attn2.to_k", context),
    ] {
        t.insert(
            format!("{base}.{layer}.weight::lora::0"),
            (Tensor::ones((32, 4), DType::F32, &dev).expect("t") * 0.05).expect("t"),
        );
        t.insert(
            format!("{base}.{layer}.weight::lora::1"),
            (Tensor::ones((4, cin), DType::F32, &dev).expect("t") * 0.05).expect("t"),
        );
    }
    tiny::save_safetensors(path, &t).expect("save");
}

#[test]
fn a_layerdiffuse_attention_file_merges_by_its_forge_names_and_one_for_another_base_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tiny_dir(tmp.path());
    let right = tmp.path().join("layer_tiny_transparent_attn.safetensors");
    write_forge_lora(&right, 32);
    let lora = weights::Lora::load(&right, 1.0).expect("forge layout");
    let layers: Vec<&str> = lora.layers().collect();
    assert!(
        layers.contains(&"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"),
        "{layers:?}"
    );
    let with = Model::load_diffusers(
        &dir,
        &LoadOptions {
            loras: vec![(right, 1.0)],
            ..LoadOptions::default()
        },
    )
    .expect("merged");
    let without = Model::load_diffusers(&dir, &LoadOptions::default()).expect("plain");
    assert_ne!(
        run(&with, &request(1))[0].image,
        run(&without, &request(1))[0].image
    );

    // SDXL's file (a 2048-wide context) on an SD 1.x-shaped model: named, with the fix.
    let xl = tmp.path().join("layer_xl_transparent_attn.safetensors");
    write_forge_lora(&xl, 2048);
    let e = Model::load_diffusers(
        &dir,
        &LoadOptions {
            loras: vec![(xl, 1.0)],
            ..LoadOptions::default()
        },
    )
    .expect_err("wrong base")
    .to_string();
    assert!(
        e.contains("layer_xl_transparent_attn")
            && e.contains("made for SDXL")
            && e.contains("use the version"),
        "{e}"
    );

    // SD 1.5's attention-sharing module is not a LoRA: refused by what it is.
    let sharing = tmp.path().join("layer_sd15_transparent_attn.safetensors");
    let mut t = std::collections::BTreeMap::new();
    t.insert(
        "hookers.layers.0.temporal_n.weight".to_owned(),
        Tensor::zeros(4, DType::F32, &Device::Cpu).expect("t"),
    );
    tiny::save_safetensors(&sharing, &t).expect("save");
    let e = weights::Lora::load(&sharing, 1.0)
        .expect_err("not a lora")
        .to_string();
    assert!(
        e.contains("attention-sharing") && e.contains("layer_sd15_transparent_attn"),
        "{e}"
    );
}

fn tiny_controlnet(tmp: &Path, model: &Model, seed: u64) -> crate::controlnet::ControlNet {
    let dir = tmp.join(format!("controlnet-{seed}"));
    crate::tiny::write_controlnet(&dir, &model.config.unet, model.config.vae.factor(), seed)
        .expect("write controlnet");
    crate::controlnet::ControlNet::load(&dir, &LoadOptions::default()).expect("load controlnet")
}

fn stripes(w: u32, h: u32) -> Rgb {
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let v = if (x / 8 + y / 16) % 2 == 0 { 255 } else { 0 };
            data.extend([v, 255 - v, v / 2]);
        }
    }
    Rgb {
        width: w,
        height: h,
        data,
    }
}

#[test]
fn a_controlnet_steers_the_image_only_with_weight_and_only_in_its_steps() {
    use crate::pipeline::{Control, generate_controlled};
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let net = tiny_controlnet(tmp.path(), &model, 5);
    let req = request(3);
    let plain = run(&model, &req);
    let with = |weight: f64, start: f64, end: f64, guess: bool| {
        let c = Control {
            net: &net,
            image: stripes(req.width, req.height),
            weight,
            start,
            end,
            guess,
        };
        generate_controlled(&model, &req, &[c], &JobCtx::detached(), None).expect("generate")
    };
    assert_eq!(
        png(&with(0.0, 0.0, 1.0, false)[0]),
        png(&plain[0]),
        "weight 0 leaves the image as it was"
    );
    let full = with(1.0, 0.0, 1.0, false);
    assert_ne!(
        full[0].image.data, plain[0].image.data,
        "weight 1 changes it"
    );
    assert_eq!(
        png(&with(1.0, 0.0, 1.0, false)[0]),
        png(&full[0]),
        "deterministic"
    );
    let late = with(1.0, 0.5, 1.0, false);
    assert_ne!(
        late[0].image.data, full[0].image.data,
        "start 0.5 skips the first steps"
    );
    assert_ne!(late[0].image.data, plain[0].image.data);
    let guess = with(1.0, 0.0, 1.0, true);
    assert_ne!(
        guess[0].image.data, full[0].image.data,
        "guess mode differs"
    );

    // Two ControlNets add up: two at half weight of the same net equal one at full weight.
    let half = Control {
        net: &net,
        image: stripes(req.width, req.height),
        weight: 0.5,
        start: 0.0,
        end: 1.0,
        guess: false,
    };
    let two = generate_controlled(
        &model,
        &req,
        &[half.clone(), half],
        &JobCtx::detached(),
        None,
    )
    .expect("two");
    let d = two[0]
        .image
        .data
        .iter()
        .zip(&full[0].image.data)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    assert!(d <= 1, "two halves differ from one whole by {d}");
}

#[test]
fn a_control_image_of_another_size_or_a_controlnet_of_another_base_is_refused() {
    use crate::pipeline::{Control, generate_controlled};
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let net = tiny_controlnet(tmp.path(), &model, 5);
    let req = request(3);
    let c = |image: Rgb, weight: f64, start: f64, end: f64| Control {
        net: &net,
        image,
        weight,
        start,
        end,
        guess: false,
    };
    let err = |c: Control<'_>| {
        generate_controlled(&model, &req, &[c], &JobCtx::detached(), None)
            .expect_err("refused")
            .to_string()
    };
    let e = err(c(stripes(32, 64), 1.0, 0.0, 1.0));
    assert!(
        e.contains("the control image is 32×64 but the requested size is 64×64"),
        "{e}"
    );
    let e = err(c(stripes(64, 64), 3.0, 0.0, 1.0));
    assert!(e.contains("weight 3 is out of range"), "{e}");
    let e = err(c(stripes(64, 64), 1.0, 0.8, 0.2));
    assert!(e.contains("start before end"), "{e}");

    let mut other = model.config.unet.clone();
    other.cross_attention_dim = 768;
    let dir = tmp.path().join("sd15-shaped");
    crate::tiny::write_controlnet(&dir, &other, 8, 1).expect("write");
    let wrong = crate::controlnet::ControlNet::load(&dir, &LoadOptions::default()).expect("load");
    let e = generate_controlled(
        &model,
        &req,
        &[Control {
            net: &wrong,
            image: stripes(64, 64),
            weight: 1.0,
            start: 0.0,
            end: 1.0,
            guess: false,
        }],
        &JobCtx::detached(),
        None,
    )
    .expect_err("wrong base")
    .to_string();
    assert!(
        e.contains("is for SD 1.x") && e.contains("made for the model's base"),
        "{e}"
    );
}

#[test]
fn a_reference_image_of_another_size_steers_the_image_deterministically() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let req = Request {
        width: 128,
        ..request(11)
    };
    let reference = |w: u32, h: u32, style_fidelity: f64| ReferenceImage {
        image: Rgb {
            width: w,
            height: h,
            data: (0..w * h * 3).map(|i| (i * 7 % 253) as u8).collect(),
        },
        style_fidelity,
        seed: 3,
    };
    let go = |r: Option<&ReferenceImage>| {
        pipeline::generate_referenced(&model, &req, &[], r, &JobCtx::detached(), None)
            .expect("generate")
            .remove(0)
            .image
    };
    let plain = go(None);
    let small = reference(48, 32, 0.5);
    let a = go(Some(&small));
    assert_eq!(a, go(Some(&small)), "same reference, same bytes");
    assert_ne!(a, plain, "the reference changed nothing");
    assert_ne!(
        a,
        go(Some(&reference(48, 32, 0.0))),
        "style fidelity is ignored"
    );
    for (bad, why) in [
        (reference(50, 32, 0.5), "multiples of 8"),
        (reference(48, 32, 1.5), "out of range"),
    ] {
        let err =
            pipeline::generate_referenced(&model, &req, &[], Some(&bad), &JobCtx::detached(), None)
                .expect_err("refused")
                .to_string();
        assert!(err.contains(why), "{err}");
    }
}

#[test]
fn a_clip_is_denoised_together_in_overlapping_windows_deterministically() {
    use crate::animate::{ClipRequest, generate_clip};
    use crate::motion::MotionAdapter;
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    let dir = tmp.path().join("motion");
    crate::tiny::write_motion_adapter(&dir, &model.config.unet, 5).expect("write");
    let motion = MotionAdapter::load(&dir, candle_core::DType::F32, &Device::Cpu).expect("load");
    let clip = |frames, context, overlap| ClipRequest {
        req: Request {
            width: 32,
            height: 32,
            steps: 2,
            ..request(3)
        },
        frames,
        context,
        overlap,
        looped: false,
        keyframes: Vec::new(),
    };
    let go = |c: &ClipRequest| generate_clip(&model, &motion, c, &JobCtx::detached(), None);
    let a = go(&clip(6, 16, 4)).expect("clip");
    assert_eq!(a.len(), 6);
    assert!(a.iter().all(|f| (f.width, f.height) == (32, 32)));
    assert_eq!(
        a,
        go(&clip(6, 16, 4)).expect("again"),
        "same recipe, same frames"
    );
    assert_ne!(a[0], a[5], "every frame is its own");
    let windowed = go(&clip(10, 4, 1)).expect("windows");
    assert_eq!(windowed.len(), 10);
    let whole = go(&clip(10, 16, 0)).expect("one window");
    assert_ne!(windowed, whole, "the windows changed nothing");
    // Prompt travel: a keyframe changes the clip, reproducibly.
    let travel = ClipRequest {
        keyframes: vec![crate::animate::Keyframe {
            frame: 5,
            prompt: "a dragon breathing fire".into(),
            negative_prompt: "blurry".into(),
            seed: 3,
        }],
        ..clip(10, 16, 0)
    };
    let travelled = go(&travel).expect("travel");
    assert_ne!(travelled, whole, "the keyframe changed nothing");
    assert_eq!(travelled, go(&travel).expect("again"));
    let late = ClipRequest {
        keyframes: vec![crate::animate::Keyframe {
            frame: 10,
            ..travel.keyframes[0].clone()
        }],
        ..travel.clone()
    };
    let e = go(&late).expect_err("outside").to_string();
    assert!(e.contains("inside the clip's 10 frames"), "{e}");
    // A looped clip wraps its windows: the same length, other frames, reproducible.
    let looped = ClipRequest {
        looped: true,
        ..clip(10, 4, 1)
    };
    let closed = go(&looped).expect("looped");
    assert_eq!(closed.len(), 10);
    assert_ne!(closed, windowed, "looping changed nothing");
    assert_eq!(closed, go(&looped).expect("again"));
    for (c, says) in [
        (clip(10, 40, 4), "takes 1 to 32 at once"),
        (clip(10, 4, 4), "needs a context longer"),
        (clip(0, 4, 1), "0 frames"),
    ] {
        let e = go(&c).expect_err("refused").to_string();
        assert!(e.contains(says), "{e}");
    }
}

#[test]
fn a_walk_passes_through_its_keyframes_exactly_and_between_them_by_slerp() {
    use crate::animate::{ClipRequest, Keyframe, generate_walk};
    let tmp = tempfile::tempdir().expect("tmp");
    let model =
        Model::load_diffusers(&tiny_dir(tmp.path()), &LoadOptions::default()).expect("load");
    // A deterministic sampler: every frame's image comes from its noise and text alone.
    let base = Request {
        width: 32,
        height: 32,
        steps: 2,
        scheduler: SchedulerKind::Ddim,
        ..request(3)
    };
    let key = Keyframe {
        frame: 4,
        prompt: "a dragon breathing fire".into(),
        negative_prompt: "blurry".into(),
        seed: 9,
    };
    let walk = ClipRequest {
        req: base.clone(),
        frames: 8,
        context: 16,
        overlap: 4,
        looped: true,
        keyframes: vec![key.clone()],
    };
    let frames = generate_walk(&model, &walk, &JobCtx::detached()).expect("walk");
    assert_eq!(frames.len(), 8);
    let alone = |req: Request| {
        generate(&model, &req, &JobCtx::detached(), None).expect("one")[0]
            .image
            .clone()
    };
    assert_eq!(
        frames[0],
        alone(base.clone()),
        "frame 0 is the first keyframe"
    );
    let second = Request {
        prompt: key.prompt.clone(),
        seed: key.seed,
        ..base.clone()
    };
    assert_eq!(frames[4], alone(second.clone()), "frame 4 is the second");
    assert_ne!(frames[2], frames[0]);
    assert_ne!(frames[2], frames[4]);
    // Looped: frame 6 is half way back from the second keyframe to the first.
    let back = Request {
        between: Some(crate::pipeline::Between {
            prompt: base.prompt.clone(),
            negative_prompt: base.negative_prompt.clone(),
            seed: base.seed,
            t: 0.5,
        }),
        ..second
    };
    assert_eq!(frames[6], alone(back));
}

#[test]
fn slerp_keeps_the_norm_of_noise_and_ends_on_its_two_ends() {
    let a = Tensor::new(&[1f32, 0.0, 0.0], &Device::Cpu).expect("a");
    let b = Tensor::new(&[0f32, 1.0, 0.0], &Device::Cpu).expect("b");
    let mid = crate::pipeline::slerp(&a, &b, 0.5).expect("mid");
    let v: Vec<f32> = mid.to_vec1().expect("v");
    let h = std::f32::consts::FRAC_1_SQRT_2;
    assert!((v[0] - h).abs() < 1e-6 && (v[1] - h).abs() < 1e-6, "{v:?}");
    assert_eq!(
        crate::pipeline::slerp(&a, &b, 0.0)
            .expect("0")
            .to_vec1::<f32>()
            .expect("v"),
        vec![1.0, 0.0, 0.0]
    );
    assert_eq!(
        crate::pipeline::slerp(&a, &b, 1.0)
            .expect("1")
            .to_vec1::<f32>()
            .expect("v"),
        vec![0.0, 1.0, 0.0]
    );
}

/// transformers 5 saves `CLIPTextModel` without the `text_model.` level and ships only
/// `tokenizer.json`: such a folder loads, and draws what the transformers 4 layout draws.
#[test]
fn a_text_encoder_saved_by_transformers_5_loads_and_draws_the_same() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tiny_dir(tmp.path());
    let before = generate(
        &Model::load_diffusers(&dir, &LoadOptions::default()).expect("load"),
        &request(4),
        &JobCtx::detached(),
        None,
    )
    .expect("before")[0]
        .image
        .clone();
    let file = dir.join("text_encoder/model.safetensors");
    let tensors = candle_core::safetensors::load(&file, &Device::Cpu).expect("read");
    let renamed: std::collections::BTreeMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, v)| {
            (
                k.strip_prefix("text_model.")
                    .map(str::to_owned)
                    .unwrap_or(k),
                v,
            )
        })
        .collect();
    assert!(renamed.contains_key("embeddings.token_embedding.weight"));
    std::fs::remove_file(&file).expect("rm");
    crate::tiny::save_safetensors(&file, &renamed).expect("write");
    for f in [
        "tokenizer_config.json",
        "vocab.json",
        "merges.txt",
        "special_tokens_map.json",
    ] {
        let _ = std::fs::remove_file(dir.join("tokenizer").join(f));
    }
    let after = generate(
        &Model::load_diffusers(&dir, &LoadOptions::default()).expect("load transformers 5 layout"),
        &request(4),
        &JobCtx::detached(),
        None,
    )
    .expect("after")[0]
        .image
        .clone();
    assert_eq!(before, after);
}
