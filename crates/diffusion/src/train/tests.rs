use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use mintframe_types::{LoraTargets, LrSchedule};

use super::files::{read_safetensors, write_safetensors};
use super::*;
use crate::keymap::KeyMap;
use crate::nn::Padding;
use crate::parity::{max_abs, rel_err};
use crate::tiny::tiny_config;
use crate::unet::UNet;
use crate::weights::{Trainable, Weights, normal_vec};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/training")
        .join(name)
}

/// The reference UNet's weights (diffusers names) in a file of their own, and the fixture.
fn reference_unet(tmp: &Path) -> (PathBuf, BTreeMap<String, Tensor>) {
    let (all, _) = read_safetensors(&fixture("unet_grad.safetensors")).expect("fixture");
    let unet: BTreeMap<String, Tensor> = all
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("unet.").map(|k| (k.to_owned(), v.clone())))
        .collect();
    let path = tmp.join("unet.safetensors");
    write_safetensors(&path, &unet, Default::default()).expect("write");
    (path, all)
}

fn load_unet(path: &Path, train: Option<Arc<Trainable>>, loras: Vec<(PathBuf, f32)>) -> UNet {
    let loras = loras
        .into_iter()
        .map(|(p, s)| crate::weights::Lora::load(&p, s).expect("lora"))
        .collect();
    let w = Arc::new(
        Weights::from_files(
            &[path.to_owned()],
            KeyMap::Diffusers,
            "unet",
            DType::F32,
            &Device::Cpu,
        )
        .expect("weights")
        .with_loras("lora_unet_", loras)
        .with_trainable("lora_unet_", train),
    );
    UNet::new(&w.root(), &tiny_config(false).unet, Padding::ZEROS).expect("unet")
}

#[test]
fn our_unet_backward_pass_matches_pytorch_gradients_for_the_same_weights_and_inputs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (path, fx) = reference_unet(tmp.path());
    let train = Trainable::all();
    let unet = load_unet(&path, Some(train.clone()), Vec::new());
    let x = Var::from_tensor(&fx["in.x"]).expect("x");
    let pred = unet
        .forward_timesteps(x.as_tensor(), &fx["in.t"], &fx["in.ctx"], None)
        .expect("forward");
    assert!(rel_err(&pred, &fx["out.pred"]) < 1e-5, "forward differs");
    let loss = (pred - &fx["in.target"])
        .expect("d")
        .sqr()
        .expect("sq")
        .mean_all()
        .expect("mean");
    let theirs = fx["out.loss"]
        .flatten_all()
        .expect("f")
        .to_vec1::<f32>()
        .expect("v")[0];
    let ours = loss.to_scalar::<f32>().expect("loss");
    assert!(
        (ours - theirs).abs() <= 1e-5 * theirs.abs(),
        "{ours} vs {theirs}"
    );
    let grads = loss.backward().expect("backward");
    let gx = grads.get(x.as_tensor()).expect("grad of x");
    assert!(rel_err(gx, &fx["grad.x"]) < 1e-4, "grad x");
    let vars = train.vars();
    let mut checked = 0;
    let mut worst = (0f32, String::new());
    for (name, want) in fx
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("grad.").map(|k| (k, v)))
    {
        if name == "x" {
            continue;
        }
        let var = vars
            .get(name)
            .unwrap_or_else(|| panic!("no parameter {name}"));
        let got = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let e = rel_err(got, want);
        if e > worst.0 {
            worst = (e, name.to_owned());
        }
        checked += 1;
    }
    assert_eq!(
        checked,
        vars.len(),
        "every parameter has a reference gradient"
    );
    eprintln!(
        "{checked} parameter gradients; largest relative error {} at {}; input gradient {}",
        worst.0,
        worst.1,
        rel_err(gx, &fx["grad.x"])
    );
    assert!(
        worst.0 < 1e-4,
        "largest relative gradient error {} at {}",
        worst.0,
        worst.1
    );
}

/// Two random examples of the fixture's shapes, made without a VAE or text encoder.
fn random_examples(n: usize, seed: u64) -> Vec<Example> {
    (0..n)
        .map(|i| {
            let s = seed + 10 * i as u64;
            let lat = Tensor::from_vec(normal_vec(s, 4 * 8 * 12), (4, 8, 12), &Device::Cpu);
            let ctx = Tensor::from_vec(normal_vec(s + 1, 7 * 32), (7, 32), &Device::Cpu);
            Example {
                latents: lat.expect("lat"),
                flipped: None,
                context: ctx.expect("ctx"),
                pooled: None,
                width: 96,
                height: 64,
            }
        })
        .collect()
}

/// A plan whose adapters start from small random values (both `down` and `up`), so every
/// adapter carries gradient from the first step.
fn plan_with_random_adapters(path: &Path, targets: LoraTargets, salt: u64) -> LoraPlan {
    let mut p = plan(targets);
    let probe = Trainable::lora(p.clone());
    load_unet(path, Some(probe.clone()), Vec::new());
    for (name, v) in probe.vars() {
        let t = v.as_tensor();
        let n = t.elem_count();
        let seed = n as u64 + salt * name.len() as u64;
        let seeded = Tensor::from_vec(normal_vec(seed, n), t.shape(), &Device::Cpu).expect("t");
        p.init.insert(name, (seeded * 0.05).expect("scale"));
    }
    p
}

fn plan(targets: LoraTargets) -> LoraPlan {
    LoraPlan::new(4, 2.0, targets, 7).expect("plan")
}

fn opts(steps: u32) -> TrainOptions {
    TrainOptions {
        steps,
        learning_rate: 1e-2,
        seed: 3,
        ..TrainOptions::default()
    }
}

#[test]
fn training_lowers_the_loss_on_a_tiny_unet() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (path, _) = reference_unet(tmp.path());
    let train = Trainable::lora(plan(LoraTargets::Locon));
    let unet = load_unet(&path, Some(train.clone()), Vec::new());
    let sched = crate::config::SchedulerConfig::default();
    let mut t = Trainer::for_unet(
        &unet,
        Arch::Sd1,
        &sched,
        &train,
        TrainOptions {
            min_snr_gamma: Some(5.0),
            noise_offset: 0.05,
            ..opts(30)
        },
        random_examples(2, 1),
    )
    .expect("trainer");
    // The same forward passes (batches, timesteps, noise) before and after.
    let probe: Vec<u64> = (1000..1016).collect();
    let eval = |t: &mut Trainer| -> f64 {
        probe
            .iter()
            .map(|&m| f64::from(t.loss(m).expect("loss").to_scalar::<f32>().expect("s")))
            .sum::<f64>()
            / probe.len() as f64
    };
    let before = eval(&mut t);
    for _ in 0..30 {
        t.train_step().expect("step");
    }
    let after = eval(&mut t);
    assert!(after < 0.8 * before, "loss {before} → {after}");
}

#[test]
fn a_resumed_run_ends_with_the_same_lora_as_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (path, _) = reference_unet(tmp.path());
    let sched = crate::config::SchedulerConfig::default();
    let o = TrainOptions {
        grad_accum: 2,
        ema_decay: Some(0.9),
        schedule: LrSchedule::Cosine,
        warmup_steps: 1,
        ..opts(4)
    };
    let p = plan(LoraTargets::Transformer);
    let whole = {
        let train = Trainable::lora(p.clone());
        let unet = load_unet(&path, Some(train.clone()), Vec::new());
        let mut t = Trainer::for_unet(
            &unet,
            Arch::Sd1,
            &sched,
            &train,
            o.clone(),
            random_examples(3, 5),
        )
        .expect("trainer");
        for _ in 0..4 {
            t.train_step().expect("step");
        }
        t.lora_tensors(&p).expect("lora")
    };
    let ck = tmp.path().join("ck.safetensors");
    {
        let train = Trainable::lora(p.clone());
        let unet = load_unet(&path, Some(train.clone()), Vec::new());
        let mut t = Trainer::for_unet(
            &unet,
            Arch::Sd1,
            &sched,
            &train,
            o.clone(),
            random_examples(3, 5),
        )
        .expect("trainer");
        t.train_step().expect("step");
        t.train_step().expect("step");
        t.save_checkpoint(&ck, "run-a").expect("checkpoint");
        // The process dies here.
    }
    let train = Trainable::lora(p.clone());
    let unet = load_unet(&path, Some(train.clone()), Vec::new());
    let mut t = Trainer::for_unet(&unet, Arch::Sd1, &sched, &train, o, random_examples(3, 5))
        .expect("trainer");
    let err = t.restore(&ck, "run-b").expect_err("another run");
    assert!(err.to_string().contains("another training run"), "{err}");
    t.restore(&ck, "run-a").expect("restore");
    assert_eq!(t.step, 2);
    t.train_step().expect("step");
    t.train_step().expect("step");
    let resumed = t.lora_tensors(&p).expect("lora");
    assert_eq!(whole.len(), resumed.len());
    for (k, v) in &whole {
        assert!(
            max_abs(&(v - &resumed[k]).expect("d")) == 0.0,
            "{k} differs"
        );
    }
}

#[test]
fn a_saved_lora_merged_by_the_loader_gives_the_adapters_output() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (path, fx) = reference_unet(tmp.path());
    let sched = crate::config::SchedulerConfig::default();
    let p = plan(LoraTargets::Locon);
    let train = Trainable::lora(p.clone());
    let unet = load_unet(&path, Some(train.clone()), Vec::new());
    let mut t = Trainer::for_unet(
        &unet,
        Arch::Sd1,
        &sched,
        &train,
        opts(3),
        random_examples(2, 9),
    )
    .expect("trainer");
    for _ in 0..3 {
        t.train_step().expect("step");
    }
    let lora = tmp.path().join("style.safetensors");
    t.save_lora(&lora, &p, "style").expect("save");
    let run = |u: &UNet| {
        u.forward_timesteps(&fx["in.x"], &fx["in.t"], &fx["in.ctx"], None)
            .expect("forward")
    };
    let adapted = run(&unet);
    let merged = run(&load_unet(&path, None, vec![(lora.clone(), 1.0)]));
    let plain = run(&load_unet(&path, None, Vec::new()));
    assert!(
        rel_err(&adapted, &merged) < 1e-5,
        "merge differs from adapters"
    );
    assert!(rel_err(&plain, &merged) > 1e-4, "the LoRA changes nothing");
    let (tensors, meta) = read_safetensors(&lora).expect("read");
    assert_eq!(meta["ss_network_dim"], "4");
    assert_eq!(meta["ss_base_model_version"], "sd_v1");
    assert!(tensors.contains_key(
        "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight"
    ));
    assert!(tensors.contains_key("lora_unet_up_blocks_0_resnets_1_conv2.lora_up.weight"));
    assert_eq!(
        tensors["lora_unet_mid_block_attentions_0_proj_in.alpha"].dims(),
        &[] as &[usize]
    );
}

#[test]
fn our_trained_lora_gives_the_same_unet_output_in_pytorch_diffusers() {
    // The LoRA is trained here exactly as `lora_trained.safetensors` was (regenerate both with
    // UPDATE_FIXTURES=1, then `LORA_FILE=… scripts/fixtures lora_diffusers`), and diffusers'
    // `load_lora_weights` of that file gave `out.pred_lora`.
    let tmp = tempfile::tempdir().expect("tmp");
    let (path, fx) = reference_unet(tmp.path());
    let sched = crate::config::SchedulerConfig::default();
    let p = plan(LoraTargets::Locon);
    let train = Trainable::lora(p.clone());
    let unet = load_unet(&path, Some(train.clone()), Vec::new());
    let mut t = Trainer::for_unet(
        &unet,
        Arch::Sd1,
        &sched,
        &train,
        opts(3),
        random_examples(2, 9),
    )
    .expect("trainer");
    for _ in 0..3 {
        t.train_step().expect("step");
    }
    let committed = fixture("lora_trained.safetensors");
    if std::env::var_os("UPDATE_FIXTURES").is_some() {
        t.save_lora(&committed, &p, "fixture").expect("save");
    }
    let (want, _) = read_safetensors(&committed).expect("committed LoRA");
    let ours = t.lora_tensors(&p).expect("lora");
    assert_eq!(want.len(), ours.len());
    // The same training up to float rounding. Summation order differs between CPUs and
    // between backward implementations, and Adam's first steps move each weight by about ±lr
    // whatever its gradient's size, so a gradient near zero can flip an element's step: the
    // tensors are compared as wholes (relative Frobenius distance), not element by element.
    let norm = |t: &Tensor| {
        t.sqr()
            .expect("sq")
            .sum_all()
            .expect("s")
            .to_scalar::<f32>()
            .expect("f")
            .sqrt()
    };
    let mut worst = (0f32, String::new());
    for (k, v) in &ours {
        let e = norm(&(v - &want[k]).expect("d")) / norm(&want[k]).max(1e-12);
        if e > worst.0 {
            worst = (e, k.clone());
        }
    }
    eprintln!(
        "largest distance from the committed LoRA: {} ({})",
        worst.0, worst.1
    );
    assert!(
        worst.0 < 5e-2,
        "{} differs from the committed LoRA by {}",
        worst.1,
        worst.0
    );
    let (reference, _) = read_safetensors(&fixture("lora_diffusers.safetensors")).expect("fixture");
    let merged = load_unet(&path, None, vec![(committed, 1.0)])
        .forward_timesteps(&fx["in.x"], &fx["in.t"], &fx["in.ctx"], None)
        .expect("forward");
    assert!(
        rel_err(&reference["out.pred_base"], &fx["out.pred"]) < 1e-5,
        "the reference ran another UNet"
    );
    let e = rel_err(&merged, &reference["out.pred_lora"]);
    eprintln!("ours vs diffusers with the LoRA: relative error {e}");
    assert!(e < 1e-4, "ours with the LoRA vs diffusers with it: {e}");
    assert!(rel_err(&reference["out.pred_base"], &reference["out.pred_lora"]) > 1e-3);
}

#[test]
fn a_rank_of_zero_and_bad_options_are_refused_with_the_fix() {
    let e = LoraPlan::new(0, 1.0, LoraTargets::Attention, 0).expect_err("rank 0");
    assert!(e.to_string().contains("rank must be at least 1"), "{e}");
    let e = LoraPlan::new(4, 0.0, LoraTargets::Attention, 0).expect_err("alpha 0");
    assert!(e.to_string().contains("alpha"), "{e}");
    let bad = TrainOptions {
        learning_rate: -1.0,
        ..TrainOptions::default()
    };
    assert!(bad.validate().is_err());
    let bad = TrainOptions {
        steps: 0,
        ..TrainOptions::default()
    };
    assert!(bad.validate().is_err());
}

#[test]
fn the_learning_rate_warms_up_then_follows_its_schedule() {
    let o = TrainOptions {
        steps: 110,
        warmup_steps: 10,
        learning_rate: 1.0,
        schedule: LrSchedule::Cosine,
        ..TrainOptions::default()
    };
    assert!((o.lr_at(0) - 0.1).abs() < 1e-12);
    assert!((o.lr_at(9) - 1.0).abs() < 1e-12);
    assert!((o.lr_at(10) - 1.0).abs() < 1e-12);
    assert!((o.lr_at(60) - 0.5).abs() < 1e-12);
    assert!(o.lr_at(109) < 0.001);
    let lin = TrainOptions {
        schedule: LrSchedule::Linear,
        ..o.clone()
    };
    assert!((lin.lr_at(60) - 0.5).abs() < 1e-12);
    let c = TrainOptions {
        schedule: LrSchedule::Constant,
        ..o
    };
    assert!((c.lr_at(100) - 1.0).abs() < 1e-12);
}

#[test]
fn each_target_set_adapts_its_layers_and_no_others() {
    let a = plan(LoraTargets::Attention);
    let t = plan(LoraTargets::Transformer);
    let l = plan(LoraTargets::Locon);
    let q = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
    let ff = "mid_block.attentions.0.transformer_blocks.0.ff.net.2";
    let proj = "up_blocks.1.attentions.1.proj_in";
    let conv = "up_blocks.0.resnets.1.conv2";
    let time = "time_embedding.linear_1";
    assert!(a.targets_layer(q, false) && !a.targets_layer(ff, false));
    assert!(!a.targets_layer(proj, true));
    assert!(t.targets_layer(ff, false) && t.targets_layer(proj, true));
    assert!(!t.targets_layer(conv, true));
    assert!(l.targets_layer(conv, true) && l.targets_layer(q, false));
    assert!(!l.targets_layer(time, false));
    assert!(!l.targets_layer("up_blocks.0.resnets.1.time_emb_proj", false));
}

fn mse(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .expect("d")
        .sqr()
        .expect("sq")
        .mean_all()
        .expect("mean")
        .to_scalar::<f32>()
        .expect("s")
}

#[test]
fn a_lora_trained_on_red_images_pulls_generations_towards_them() {
    // The tiny model's VAE is random, so "red" is judged as the model sees it: the latent of
    // the red images, and what the VAE decodes from it. A LoRA that learnt the images pulls the
    // final latent of a generation (same prompt, seed and steps) towards theirs.
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("tiny-sd");
    crate::tiny::write_diffusers(&dir, crate::tiny::TINY_SEED, false).expect("tiny");
    let p = plan(LoraTargets::Locon);
    let train = Trainable::lora(p.clone());
    let model = crate::Model::load_diffusers(
        &dir,
        &crate::LoadOptions {
            train: Some(train.clone()),
            ..crate::LoadOptions::default()
        },
    )
    .expect("model");
    let caption = "a red potion, pixel art";
    let examples: Vec<Example> = [[230u8, 20, 30], [200, 10, 10], [250, 60, 40]]
        .iter()
        .map(|c| {
            let px: Vec<f32> = (0..3 * 64 * 64)
                .map(|i| f32::from(c[i / (64 * 64)]) / 127.5 - 1.0)
                .collect();
            let img = Tensor::from_vec(px, (3, 64, 64), &Device::Cpu).expect("img");
            encode_example(&model, &img, caption, true).expect("encode")
        })
        .collect();
    let target = Tensor::stack(
        &examples
            .iter()
            .map(|e| e.latents.clone())
            .collect::<Vec<_>>(),
        0,
    )
    .expect("stack")
    .mean(0)
    .expect("mean")
    .unsqueeze(0)
    .expect("u");
    let req = crate::Request {
        prompt: caption.into(),
        seed: 11,
        steps: 8,
        guidance: 1.0,
        width: 64,
        height: 64,
        scheduler: crate::SchedulerKind::Euler,
        ..crate::Request::default()
    };
    let draw = || {
        crate::generate(&model, &req, &mintframe_jobs::JobCtx::detached(), None)
            .expect("generate")
            .remove(0)
            .latent
    };
    let before = mse(&draw(), &target);
    let mut t = Trainer::new(
        &model,
        &train,
        TrainOptions {
            learning_rate: 1e-2,
            ..opts(60)
        },
        examples,
    )
    .expect("trainer");
    for _ in 0..60 {
        t.train_step().expect("step");
    }
    let after = mse(&draw(), &target);
    eprintln!("distance of a generation's latent to the red images': {before} → {after}");
    assert!(after < 0.5 * before, "{before} → {after}");
}

#[test]
fn a_lora_trained_on_one_base_is_refused_by_another() {
    // A UNet whose text context is 48 wide (the tiny model's is 32): its LoRA names the same
    // layers with other shapes, and the loader says which base it was made for.
    let tmp = tempfile::tempdir().expect("tmp");
    let mut cfg = tiny_config(false).unet;
    cfg.cross_attention_dim = 48;
    let p = plan(LoraTargets::Attention);
    let train = Trainable::lora(p.clone());
    let w = Arc::new(
        Weights::random(5, false, DType::F32, &Device::Cpu)
            .with_trainable("lora_unet_", Some(train.clone())),
    );
    let unet = UNet::new(&w.root(), &cfg, Padding::ZEROS).expect("unet");
    let mut ex = random_examples(1, 2);
    ex[0].context = Tensor::from_vec(normal_vec(4, 7 * 48), (7, 48), &Device::Cpu).expect("ctx");
    let sched = crate::config::SchedulerConfig::default();
    let mut t = Trainer::for_unet(&unet, Arch::Sd1, &sched, &train, opts(1), ex).expect("trainer");
    t.train_step().expect("step");
    let lora = tmp.path().join("wide.safetensors");
    t.save_lora(&lora, &p, "wide").expect("save");
    let dir = tmp.path().join("tiny-sd");
    crate::tiny::write_diffusers(&dir, crate::tiny::TINY_SEED, false).expect("tiny");
    let err = crate::Model::load_diffusers(
        &dir,
        &crate::LoadOptions {
            loras: vec![(lora, 1.0)],
            ..crate::LoadOptions::default()
        },
    )
    .expect_err("another base");
    let msg = err.to_string();
    assert!(
        msg.contains("wide.safetensors") && msg.contains("48-wide text context"),
        "{msg}"
    );
}

#[test]
fn frozen_layers_give_the_adapters_the_same_gradients_as_candles_own_backward() {
    // LoRA training runs the frozen base layers through our input-gradient-only backward;
    // with every weight trainable, candle's own backward runs. The adapters' gradients must
    // agree (non-zero `up`s, so every path carries gradient).
    let tmp = tempfile::tempdir().expect("tmp");
    let (path, fx) = reference_unet(tmp.path());
    let p = plan_with_random_adapters(&path, LoraTargets::Locon, 7919);
    let grads_of = |train: Arc<Trainable>| {
        let unet = load_unet(&path, Some(train.clone()), Vec::new());
        let pred = unet
            .forward_timesteps(&fx["in.x"], &fx["in.t"], &fx["in.ctx"], None)
            .expect("forward");
        let loss = (pred - &fx["in.target"])
            .expect("d")
            .sqr()
            .expect("sq")
            .mean_all()
            .expect("mean");
        let g = loss.backward().expect("backward");
        train
            .vars()
            .into_iter()
            .filter(|(k, _)| k.starts_with("lora_unet_"))
            .map(|(k, v)| (k, g.get(v.as_tensor()).expect("grad").clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let fast = grads_of(Trainable::lora(p.clone()));
    let reference = grads_of(Trainable::new(true, Some(p)));
    assert_eq!(fast.len(), reference.len());
    assert!(fast.len() > 60);
    for (k, g) in &fast {
        let e = rel_err(g, &reference[k]);
        assert!(e < 1e-4, "{k}: {e}");
    }
}

#[test]
fn recomputing_activations_gives_the_same_training_step() {
    // Gradient checkpointing changes where gradients are computed, not what they are: one
    // step with and without it ends with the same adapters (non-zero `up`s so every adapter
    // gets gradient; grad accumulation so the recomputed gradients add up across passes).
    let tmp = tempfile::tempdir().expect("tmp");
    let (path, _) = reference_unet(tmp.path());
    let p = plan_with_random_adapters(&path, LoraTargets::Locon, 31);
    let sched = crate::config::SchedulerConfig::default();
    let step = |train: Arc<Trainable>| {
        let unet = load_unet(&path, Some(train.clone()), Vec::new());
        let o = TrainOptions {
            grad_accum: 2,
            ..opts(1)
        };
        let mut t = Trainer::for_unet(&unet, Arch::Sd1, &sched, &train, o, random_examples(2, 4))
            .expect("trainer");
        let s = t.train_step().expect("step");
        (s.loss, t.lora_tensors(&p).expect("lora"))
    };
    let (loss_a, kept) = step(Trainable::lora(p.clone()));
    let (loss_b, recomputed) = step(Trainable::lora_recomputed(p.clone()));
    assert!(
        (loss_a - loss_b).abs() < 1e-6 * loss_a.abs(),
        "{loss_a} vs {loss_b}"
    );
    assert_eq!(kept.len(), recomputed.len());
    // Adam divides each gradient by its own size, so float noise in a near-zero gradient shows
    // up a little larger in the step; a gradient left out would differ by the whole step.
    for (k, v) in &kept {
        let e = rel_err(v, &recomputed[k]);
        assert!(e < 1e-3, "{k}: {e}");
    }
}
