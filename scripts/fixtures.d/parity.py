"""Whole-model parity fixtures: tiny random diffusers folders of SD 1.5, SD 2.1 (v-prediction,
linear projections), SDXL (two encoders, text-time embeddings) and the 9-channel SD 1.5
inpainting structure, and what diffusers' own pipelines and models compute from them.

For each NAME in sd15, sd21, sdxl, sd15_inpaint this writes, under OUT_DIR:
  NAME/            the folder `save_pretrained` writes (16-bit weights, as released models ship),
                   minus the tokenizers' vocab.json and merges.txt: we tokenise with CLIP's own BPE
                   table, and the reference below does too (built from open_clip's copy of it);
  NAME_io.safetensors
    te<i>.ids, te<i>.last, te<i>.penultimate, te<i>.pooled
        each text encoder on two 77-token chunks (a long prompt cut as A1111 does) — pooled is
        CLIPTextModel's pooler output, or CLIPTextModelWithProjection's text_embeds;
    unet.sample, unet.t, unet.context, [unet.text_embeds, unet.time_ids], unet.out
        one UNet2DConditionModel forward at batch 2 with two timesteps;
    vae.latent, vae.decoded, vae.image, vae.mean
        AutoencoderKL decode (scaled latent in, pixels in [-1, 1] out) and encode (latent_dist.mean);
    gen.<ddim|euler>.noise, .latents, .image
        the pipeline run end to end (prompt, negative prompt, guidance 5, 4 steps, 96×64) from the
        given unit noise: final latents (output_type="latent") and the image in [0, 1], HWC.
  The prompts and settings are in the file's metadata.
  sd15_single.safetensors
      the sd15 weights as an A1111/Civitai checkpoint (ldm names, 16-bit); diffusers' own
      single-file converters read every name back to the same tensor, or this script fails.

Conventions the fixtures pin, where diffusers and A1111-style samplers differ:
  - Euler starts from sigma_0 * noise (k-diffusion, A1111, ours); diffusers multiplies the given
    latents by init_noise_sigma, sqrt(sigma_0^2 + 1) under "leading" spacing, so we hand it
    noise * sigma_0 / init_noise_sigma and both start from the same latent;
  - images are encoded to the latent distribution's mean; diffusers' inpainting pipeline draws a
    sample for the masked image, so the fixture makes it take the mean (`mode()`).

Every parameter is redrawn from a seeded normal (as controlnet.py does) so nothing hides behind
zero-initialised layers. Latents are 8×12 so a swapped height and width shows.

Usage: parity.py BPE_GZ OUT_DIR"""
import gzip
import json
import os
import shutil
import sys
import tempfile

import diffusers
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    EulerDiscreteScheduler,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from safetensors.torch import save_file

import controlnet
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer
from transformers.models.clip.tokenization_clip import bytes_to_unicode

PROMPT = "a knight in a red cloak holding a sword, pixel art, side view, full body"
NEGATIVE = "blurry, lowres, watermark"
LONG = ", ".join(["a tiny green slime with shiny eyes and a crown"] * 12)
GUIDANCE = 5.0
STEPS = 4
WIDTH, HEIGHT = 96, 64

# SD 1.5's and SDXL's released scheduler configs (the fields that shape the tables).
SD_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    steps_offset=1,
    clip_sample=False,
    set_alpha_to_one=False,
    skip_prk_steps=True,
    prediction_type="epsilon",
)


def randomise(model):
    """Every parameter redrawn as controlnet.py's fixtures draw them."""
    controlnet.randomise(model)
    return model


def clip_config(act, width, projection=None):
    return CLIPTextConfig(
        vocab_size=49408,
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=3,
        num_attention_heads=2,
        max_position_embeddings=77,
        hidden_act=act,
        projection_dim=projection or width,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=1,
    )


def tokenizers(bpe_gz, work):
    """CLIP's BPE table as transformers' vocab.json and merges.txt, built as CLIP builds it."""
    merges = gzip.open(bpe_gz).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab += ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408
    vf, mf = os.path.join(work, "vocab.json"), os.path.join(work, "merges.txt")
    with open(vf, "w") as f:
        json.dump({t: i for i, t in enumerate(vocab)}, f)
    with open(mf, "w") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    eot = CLIPTokenizer(vf, mf, pad_token="<|endoftext|>", model_max_length=77)
    bang = CLIPTokenizer(vf, mf, pad_token="!", model_max_length=77)
    return eot, bang


def unet(**kw):
    cfg = dict(
        sample_size=8,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        norm_eps=1e-5,
        flip_sin_to_cos=True,
        freq_shift=0,
        up_block_types=None,
    )
    cfg.update(kw)
    cfg["up_block_types"] = tuple(
        "CrossAttnUpBlock2D" if t.startswith("CrossAttn") else "UpBlock2D"
        for t in reversed(cfg["down_block_types"])
    )
    return randomise(UNet2DConditionModel(**cfg).float().eval())


def vae(scaling):
    return randomise(
        AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            block_out_channels=(8, 8, 16, 16),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=4,
            sample_size=64,
            scaling_factor=scaling,
        )
        .float()
        .eval()
    )


def build(name, eot, bang):
    sched = DDIMScheduler(**{k: v for k, v in SD_SCHEDULER.items() if k != "skip_prk_steps"})
    if name in ("sd15", "sd15_inpaint"):
        parts = dict(
            unet=unet(
                in_channels=9 if name == "sd15_inpaint" else 4,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                attention_head_dim=2,
                cross_attention_dim=8,
                use_linear_projection=False,
            ),
            vae=vae(0.18215),
            text_encoder=randomise(CLIPTextModel(clip_config("quick_gelu", 8)).eval()),
            tokenizer=eot,
        )
        cls = StableDiffusionInpaintPipeline if name == "sd15_inpaint" else StableDiffusionPipeline
    elif name == "sd21":
        sched = DDIMScheduler(
            **{k: v for k, v in SD_SCHEDULER.items() if k != "skip_prk_steps"}
            | dict(prediction_type="v_prediction")
        )
        parts = dict(
            unet=unet(
                in_channels=4,
                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                attention_head_dim=(2, 4),
                cross_attention_dim=8,
                use_linear_projection=True,
            ),
            vae=vae(0.18215),
            text_encoder=randomise(CLIPTextModel(clip_config("gelu", 8)).eval()),
            tokenizer=bang,
        )
        cls = StableDiffusionPipeline
    else:
        sched = EulerDiscreteScheduler(
            **{k: v for k, v in SD_SCHEDULER.items() if k not in ("skip_prk_steps", "clip_sample", "set_alpha_to_one")}
            | dict(timestep_spacing="leading", interpolation_type="linear", use_karras_sigmas=False)
        )
        parts = dict(
            unet=unet(
                in_channels=4,
                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                attention_head_dim=(2, 4),
                transformer_layers_per_block=(1, 2),
                cross_attention_dim=16,
                use_linear_projection=True,
                addition_embed_type="text_time",
                addition_time_embed_dim=8,
                projection_class_embeddings_input_dim=6 * 8 + 8,
            ),
            vae=vae(0.13025),
            text_encoder=randomise(CLIPTextModel(clip_config("quick_gelu", 8)).eval()),
            text_encoder_2=randomise(CLIPTextModelWithProjection(clip_config("gelu", 8, 8)).eval()),
            tokenizer=eot,
            tokenizer_2=bang,
        )
        cls = StableDiffusionXLPipeline
    if cls is StableDiffusionPipeline or cls is StableDiffusionInpaintPipeline:
        parts |= dict(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    else:
        parts |= dict(force_zeros_for_empty_prompt=False)
    return cls(scheduler=sched, **parts)


def stable_json(path):
    """save_pretrained stamps versions and paths: keep the committed files stable."""
    with open(path) as f:
        conf = json.load(f)
    for k in ("_name_or_path", "_diffusers_version", "transformers_version"):
        conf.pop(k, None)
    with open(path, "w") as f:
        json.dump(conf, f, indent=2, sort_keys=True)
        f.write("\n")


def encoders(pipe, ids):
    out = {}
    encs = [pipe.text_encoder] + ([pipe.text_encoder_2] if getattr(pipe, "text_encoder_2", None) else [])
    for i, te in enumerate(encs):
        r = te(ids[i], output_hidden_states=True)
        out[f"te{i}.ids"] = ids[i]
        out[f"te{i}.last"] = r.last_hidden_state
        out[f"te{i}.penultimate"] = r.hidden_states[-2]
        out[f"te{i}.pooled"] = r.text_embeds if hasattr(r, "text_embeds") else r.pooler_output
    return out


def chunked_ids(tok, text):
    """A1111's chunks: 75 tokens each between BOS and EOS, padded with the tokenizer's pad."""
    words = tok(text, add_special_tokens=False).input_ids
    rows = []
    for c in range(2):
        part = words[75 * c : 75 * (c + 1)]
        row = [49406] + part + [49407]
        row += [tok.pad_token_id] * (77 - len(row))
        rows.append(row)
    return torch.tensor(rows, dtype=torch.int64)


def single_file(pipe, path):
    """The same weights as an A1111 checkpoint (ldm names, 16-bit), each name checked by
    diffusers' own single-file converters: they must read every tensor back to its diffusers
    name, unchanged."""
    import ldm
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    u, v, t = pipe.unet, pipe.vae, pipe.text_encoder
    attention = [b.startswith("CrossAttn") for b in u.config.down_block_types]
    lpb = u.config.layers_per_block
    levels = len(v.config.block_out_channels)
    sd = {}
    for k, w in u.state_dict().items():
        sd["model.diffusion_model." + ldm.unet(k, lpb, attention)] = w
    for k, w in v.state_dict().items():
        name = "first_stage_model." + ldm.vae(k, levels)
        sd[name] = w[:, :, None, None] if ".mid.attn_1." in name and w.dim() == 2 else w
    for k, w in t.state_dict().items():
        sd["cond_stage_model.transformer." + k] = w
    sd = {k: w.detach().to(torch.float16).contiguous() for k, w in sd.items()}
    assert len(sd) == len(u.state_dict()) + len(v.state_dict()) + len(t.state_dict())

    def same(theirs, ours, what):
        assert set(theirs) == set(ours), f"{what}: {sorted(set(theirs) ^ set(ours))[:5]}"
        for k in ours:
            want = ours[k].to(torch.float16).float()
            assert torch.equal(theirs[k].float().reshape(want.shape), want), f"{what}: {k}"

    same(convert_ldm_unet_checkpoint(sd, dict(u.config)), u.state_dict(), "UNet")
    same(convert_ldm_vae_checkpoint(sd, dict(v.config)), v.state_dict(), "VAE")
    clip = convert_ldm_clip_checkpoint(sd)
    same({k: w for k, w in clip.items() if k != "text_model.embeddings.position_ids"}, t.state_dict(), "CLIP")
    save_file(sd, path)


def main(bpe_gz, out_dir):
    # One thread: the same bytes on every run.
    torch.set_num_threads(1)
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp()
    eot, bang = tokenizers(bpe_gz, work)
    # The mean, not a sample: see the module's docstring.
    DiagonalGaussianDistribution.sample = lambda self, generator=None: self.mean
    for seed, name in enumerate(["sd15", "sd21", "sdxl", "sd15_inpaint"]):
        torch.manual_seed(1000 + seed)
        pipe = build(name, eot, bang)
        full = os.path.join(work, name)
        pipe.to(torch.float16).save_pretrained(full, safe_serialization=True)
        if name == "sdxl":
            # The released SDXL file carries SD's DDIM fields beside Euler's, so DDIM chosen
            # for it neither clips x0 nor sets the final alpha to one (DDIM's class defaults).
            sched_json = os.path.join(full, "scheduler", "scheduler_config.json")
            with open(sched_json) as f:
                conf = json.load(f)
            conf |= dict(clip_sample=False, set_alpha_to_one=False, skip_prk_steps=True)
            with open(sched_json, "w") as f:
                json.dump(conf, f)
        cls = type(pipe)
        # The reference runs in f32 on exactly the 16-bit weights we load.
        pipe = cls.from_pretrained(full, torch_dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)

        if name == "sd15":
            single_file(pipe, os.path.join(out_dir, "sd15_single.safetensors"))
        folder = os.path.join(out_dir, name)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(full, folder, ignore=shutil.ignore_patterns("vocab.json", "merges.txt"))
        for root, _, files in os.walk(folder):
            for f in files:
                if f.endswith(".json") and f not in ("special_tokens_map.json",):
                    stable_json(os.path.join(root, f))

        io = {}
        g = torch.Generator().manual_seed(7)
        with torch.no_grad():
            toks = [pipe.tokenizer] + ([pipe.tokenizer_2] if name == "sdxl" else [])
            io |= encoders(pipe, [chunked_ids(t, LONG) for t in toks])

            u = pipe.unet
            sample = torch.randn(2, u.config.in_channels, 8, 12, generator=g)
            t = torch.tensor([981.0, 21.0])
            ctx = torch.randn(2, 77, u.config.cross_attention_dim, generator=g)
            extra = {}
            if name == "sdxl":
                extra = dict(
                    added_cond_kwargs=dict(
                        text_embeds=torch.randn(2, 8, generator=g),
                        time_ids=torch.tensor([[64.0, 96, 0, 0, 64, 96], [128.0, 64, 8, 16, 64, 96]]),
                    )
                )
                io["unet.text_embeds"] = extra["added_cond_kwargs"]["text_embeds"]
                io["unet.time_ids"] = extra["added_cond_kwargs"]["time_ids"]
            io["unet.sample"], io["unet.t"], io["unet.context"] = sample, t, ctx
            io["unet.out"] = u(sample, t, encoder_hidden_states=ctx, **extra).sample

            latent = torch.randn(1, 4, 8, 12, generator=g)
            io["vae.latent"] = latent
            io["vae.decoded"] = pipe.vae.decode(latent / pipe.vae.config.scaling_factor).sample
            image = torch.rand(1, 3, 64, 96, generator=g) * 2 - 1
            io["vae.image"] = image
            io["vae.mean"] = pipe.vae.encode(image).latent_dist.mean

            kw = dict(prompt=PROMPT, negative_prompt=NEGATIVE, guidance_scale=GUIDANCE,
                      num_inference_steps=STEPS, width=WIDTH, height=HEIGHT)
            if name == "sd15_inpaint":
                init = (torch.rand(1, 3, HEIGHT, WIDTH, generator=g) * 255).round() / 255
                mask = torch.zeros(1, 1, HEIGHT, WIDTH)
                mask[:, :, 16:48, 24:72] = 1.0  # on 8-pixel cells: nearest and mean agree
                io["inpaint.image"], io["inpaint.mask"] = init, mask
                kw |= dict(image=init, mask_image=mask, strength=1.0)
            for sampler, scls in (("ddim", DDIMScheduler), ("euler", EulerDiscreteScheduler)):
                # From the folder's file, as a user's pipeline would read it.
                pipe.scheduler = scls.from_pretrained(full, subfolder="scheduler")
                noise = torch.randn(1, 4, 8, 12, generator=g)
                pipe.scheduler.set_timesteps(STEPS)
                start = noise * (float(pipe.scheduler.sigmas[0]) / float(pipe.scheduler.init_noise_sigma)
                                 if sampler == "euler" else 1.0)
                lat = pipe(latents=start.clone(), output_type="latent", **kw).images
                img = pipe(latents=start.clone(), output_type="pt", **kw).images
                io[f"gen.{sampler}.noise"] = noise
                io[f"gen.{sampler}.latents"] = lat
                io[f"gen.{sampler}.image"] = img[0].permute(1, 2, 0)
                if name in ("sd15", "sdxl"):
                    # What `mintframe generate --latents` reads, and diffusers' PNG to hold it to.
                    save_file({"latents": noise.contiguous()},
                              os.path.join(out_dir, f"{name}_{sampler}_latents.safetensors"))
                    pipe.numpy_to_pil(pipe.image_processor.pt_to_numpy(img))[0].save(
                        os.path.join(out_dir, f"{name}_{sampler}.png"))
        meta = dict(
            prompt=PROMPT, negative_prompt=NEGATIVE, guidance=str(GUIDANCE), steps=str(STEPS),
            width=str(WIDTH), height=str(HEIGHT), long_prompt=LONG,
            made_by=f"diffusers {diffusers.__version__}, torch {torch.__version__}",
        )
        save_file({k: v.detach().contiguous() for k, v in io.items()},
                  os.path.join(out_dir, f"{name}_io.safetensors"), metadata=meta)
        print(f"{name}: {len(io)} tensors")
    shutil.rmtree(work)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
