"""Trains Mintframe's offline sprite model from scratch on procedural sprites (sprites.py):
an autoencoder (32×32 RGB ↔ 16×16×4), then a text encoder on CLIP's tokenizer and a UNet
together, as diffusers' SD 1.x classes, so the result is an SD 1.x diffusers folder that
Mintframe's engine loads (diffusers loads each of its unet, vae and text_encoder; the folder has
no CLIP vocabulary files, the engine brings its own). CPU, float32, deterministic algorithms, a
fixed thread count: the same command gives the same weights on the same backend.

    python train.py OUT_DIR --bpe PATH/bpe_simple_vocab_16e6.txt [--steps N] [--vae-steps N] ...

Phases checkpoint into OUT_DIR/work/ and a rerun with the same options resumes where it stopped
(one with other options is refused: move work/ away to start again).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

import sprites
from clip_bpe import Tokenizer

VAE_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
    up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    block_out_channels=(16, 32),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=32,
)

TEXT_CONFIG = dict(
    vocab_size=49408,
    hidden_size=64,
    intermediate_size=256,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=77,
    hidden_act="quick_gelu",
    layer_norm_eps=1e-5,
    bos_token_id=49406,
    eos_token_id=49407,
    pad_token_id=49407,
    projection_dim=64,
)

UNET_CONFIG = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64, 64),
    layers_per_block=1,
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=64,
    attention_head_dim=8,
    norm_num_groups=16,
)

# SD 1.x's noise schedule, so the engine's samplers apply unchanged.
SCHEDULE = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    steps_offset=1,
)


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def to_unit(imgs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1.0


# The options a checkpoint depends on; resuming under others would not give the same weights.
RECIPE_KEYS = ("images", "batch", "vae_steps", "steps", "lr", "ema", "threads")


def recipe(args) -> dict:
    return {k: getattr(args, k) for k in RECIPE_KEYS}


def save_state(path, args, **parts):
    tmp = path + ".part"
    state = {k: (v.state_dict() if hasattr(v, "state_dict") else v) for k, v in parts.items()}
    state["recipe"] = recipe(args)
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path, args):
    st = torch.load(path, weights_only=True)
    if st.get("recipe") != recipe(args):
        raise SystemExit(
            f"{path} was made with {st.get('recipe')}, not {recipe(args)}: rerun with those options "
            "or move the work folder away to start again"
        )
    return st


def train_vae(args, imgs, work):
    torch.manual_seed(1)
    vae = AutoencoderKL(**VAE_CONFIG)
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    path = os.path.join(work, "vae.pt")
    step = 0
    if os.path.exists(path):
        st = load_state(path, args)
        vae.load_state_dict(st["vae"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
    # One stream of batches from the start; a resumed run replays the batches already taken so
    # it goes on exactly as an uninterrupted one would.
    rng = np.random.default_rng(2)
    for _ in range(step):
        rng.integers(0, len(imgs), args.batch)
    data = to_unit(imgs)
    t0 = time.time()
    while step < args.vae_steps:
        idx = rng.integers(0, len(data), args.batch)
        x = data[idx]
        post = vae.encode(x).latent_dist
        # The posterior's mean, not a sample: with so short a training the sampling noise
        # (std 1 at the start) would swamp the reconstruction; the small KL term still keeps
        # the latents near the origin, and the diffusion model sees them rescaled to unit std.
        rec = vae.decode(post.mean).sample
        kl = post.kl().mean()
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + 1e-6 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0 or step == args.vae_steps:
            log(f"vae step {step}/{args.vae_steps} loss {loss.item():.4f} ({(time.time() - t0) / 50:.2f} s/step)")
            t0 = time.time()
        if step % 250 == 0 or step == args.vae_steps:
            save_state(path, args, vae=vae, opt=opt, step=step)
    vae.eval()
    return vae


@torch.no_grad()
def encode_all(vae, imgs):
    out = []
    for i in range(0, len(imgs), 256):
        out.append(vae.encode(to_unit(imgs[i : i + 256])).latent_dist.mean)
    return torch.cat(out)


def train_diffusion(args, latents, ids, work, preview=None):
    torch.manual_seed(3)
    text = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    unet = UNet2DConditionModel(**UNET_CONFIG)
    ema_text = CLIPTextModel(CLIPTextConfig(**TEXT_CONFIG))
    ema_unet = UNet2DConditionModel(**UNET_CONFIG)
    ema_text.load_state_dict(text.state_dict())
    ema_unet.load_state_dict(unet.state_dict())
    params = list(text.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
    sched = DDPMScheduler(**SCHEDULE)
    alphas = sched.alphas_cumprod
    snr = alphas / (1 - alphas)
    path = os.path.join(work, "diffusion.pt")
    step = 0
    if os.path.exists(path):
        st = load_state(path, args)
        text.load_state_dict(st["text"])
        unet.load_state_dict(st["unet"])
        ema_text.load_state_dict(st["ema_text"])
        ema_unet.load_state_dict(st["ema_unet"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
    ema_pairs = list(zip(list(ema_text.parameters()) + list(ema_unet.parameters()), params))
    t0 = time.time()
    losses = []
    while step < args.steps:
        rng = np.random.default_rng(1000 + step)
        g = torch.Generator().manual_seed(step)
        idx = rng.integers(0, len(latents), args.batch)
        x0 = latents[idx]
        tok = ids[idx]
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, 1000, (args.batch,), generator=g)
        xt = sched.add_noise(x0, noise, t)
        ctx = text(tok).last_hidden_state
        pred = unet(xt, t, ctx).sample
        # Min-SNR-5 weighting (Hang et al. 2023): less weight on the nearly clean steps.
        w = torch.clamp(snr[t], max=5.0) / snr[t]
        loss = (w * ((pred - noise) ** 2).mean(dim=(1, 2, 3))).mean()
        warm = min(1.0, (step + 1) / 200)
        decay = 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for grp in opt.param_groups:
            grp["lr"] = args.lr * warm * (0.1 + 0.9 * decay)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        d = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in ema_pairs:
                e.mul_(d).add_(p.detach(), alpha=1 - d)
        losses.append(loss.item())
        if step % 50 == 0 or step == args.steps:
            dt = (time.time() - t0) / 50
            eta = (args.steps - step) * dt / 60
            log(f"step {step}/{args.steps} loss {np.mean(losses):.4f} ({dt:.2f} s/step, {eta:.0f} min left)")
            losses = []
            t0 = time.time()
        if step % 250 == 0 or step == args.steps:
            save_state(path, args, text=text, unet=unet, ema_text=ema_text, ema_unet=ema_unet, opt=opt, step=step)
        if preview and step % args.preview_every == 0:
            preview(ema_text, ema_unet, os.path.join(work, f"samples-{step:05}.png"))
    return ema_text.eval(), ema_unet.eval()


@torch.no_grad()
def sample(vae, text, unet, tok, prompts, scale, seed=0, steps=30, guidance=5.0):
    from diffusers import EulerDiscreteScheduler

    # Plain Euler, the model's default sampler in Mintframe.
    sch = EulerDiscreteScheduler(**SCHEDULE)
    sch.set_timesteps(steps)
    n = len(prompts)
    cond = text(torch.tensor([tok.ids(p) for p in prompts])).last_hidden_state
    unc = text(torch.tensor([tok.ids("")] * n)).last_hidden_state
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, 4, 16, 16), generator=g) * sch.init_noise_sigma
    for t in sch.timesteps:
        xi = sch.scale_model_input(torch.cat([x, x]), t)
        e = unet(xi, t, torch.cat([unc, cond])).sample
        eu, ec = e.chunk(2)
        x = sch.step(eu + guidance * (ec - eu), t, x).prev_sample
    img = vae.decode(x / scale).sample
    return ((img.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def save_grid(got, per_row, path):
    from PIL import Image

    rows = [np.concatenate(list(got[i : i + per_row]), axis=1) for i in range(0, len(got), per_row)]
    big = np.concatenate(rows, axis=0)
    Image.fromarray(big).resize((big.shape[1] * 3, big.shape[0] * 3), Image.NEAREST).save(path)


def write_folder(out, vae, text, unet, scale, args):
    os.makedirs(out, exist_ok=True)
    vae.register_to_config(scaling_factor=float(scale))
    # 16-bit on disk keeps the folder small; the engine computes in f32 on the CPU.
    vae.to(torch.float16).save_pretrained(os.path.join(out, "vae"), safe_serialization=True)
    unet.to(torch.float16).save_pretrained(os.path.join(out, "unet"), safe_serialization=True)
    text.to(torch.float16).save_pretrained(os.path.join(out, "text_encoder"), safe_serialization=True)
    for m in (vae, unet, text):
        m.to(torch.float32)
    os.makedirs(os.path.join(out, "scheduler"), exist_ok=True)
    with open(os.path.join(out, "scheduler", "scheduler_config.json"), "w") as f:
        json.dump({"_class_name": "EulerDiscreteScheduler", "timestep_spacing": "leading", "clip_sample": False, "set_alpha_to_one": False, **SCHEDULE}, f, indent=2)
    os.makedirs(os.path.join(out, "tokenizer"), exist_ok=True)
    with open(os.path.join(out, "tokenizer", "tokenizer_config.json"), "w") as f:
        json.dump({"model_max_length": 77, "pad_token": "<|endoftext|>", "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>"}, f, indent=2)
    with open(os.path.join(out, "model_index.json"), "w") as f:
        json.dump(
            {
                "_class_name": "StableDiffusionPipeline",
                "_diffusers_version": "0.31.0",
                "scheduler": ["diffusers", "EulerDiscreteScheduler"],
                "text_encoder": ["transformers", "CLIPTextModel"],
                "tokenizer": ["transformers", "CLIPTokenizer"],
                "unet": ["diffusers", "UNet2DConditionModel"],
                "vae": ["diffusers", "AutoencoderKL"],
                "safety_checker": [None, None],
                "feature_extractor": [None, None],
                "requires_safety_checker": False,
            },
            f,
            indent=2,
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--bpe", required=True)
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--vae-steps", type=int, default=800)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--preview-every", type=int, default=1000)
    ap.add_argument("--tokens-fixture")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    work = os.path.join(args.out, "work")
    os.makedirs(work, exist_ok=True)
    tok = Tokenizer(args.bpe)

    log(f"drawing {args.images} sprites")
    imgs, caps = sprites.dataset(args.images, seed=7)
    ids = torch.tensor([tok.ids(c) for c in caps])
    if args.tokens_fixture:
        distinct = sorted(set(caps))[:: max(1, len(set(caps)) // 60)]
        with open(args.tokens_fixture, "w") as f:
            json.dump({c: tok.ids(c) for c in distinct}, f, indent=0)

    log("phase 1: the autoencoder")
    vae = train_vae(args, imgs, work)
    with torch.no_grad():
        x = to_unit(imgs[:512])
        rec = vae.decode(vae.encode(x).latent_dist.mean).sample
        log(f"autoencoder: mean abs error {((rec - x).abs().mean() * 127.5).item():.2f} of 255 on 512 sprites")
    latents = encode_all(vae, imgs)
    scale = 1.0 / latents.std().item()
    log(f"latent scaling factor {scale:.4f}")
    latents = latents * scale

    def preview(text, unet, path):
        text.eval(), unet.eval()
        prompts = [f"a {c} {k}, pixel art" for k in sprites.KINDS for c in ("red", "blue")]
        save_grid(sample(vae, text, unet, tok, prompts, scale), 2, path)
        text.train(), unet.train()

    log("phase 2: text encoder and UNet")
    text, unet = train_diffusion(args, latents, ids, work, preview)

    log("writing the diffusers folder")
    model_dir = os.path.join(args.out, "model")
    write_folder(model_dir, vae, text, unet, scale, args)

    prompts = [f"a {c} {k}, pixel art" for k in sprites.KINDS for c in ("red", "blue", "green", "yellow")]
    save_grid(sample(vae, text, unet, tok, prompts, scale), 4, os.path.join(args.out, "samples.png"))
    log("done")


if __name__ == "__main__":
    main()
