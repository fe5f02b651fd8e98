"""The peers' side of scripts/bench: PyTorch diffusers and OpenVINO on the real-size SD 1.5 /
SDXL architectures with random weights (speed does not depend on the values), timed as
`sd_bench` times ours, one phase per process so each peak RSS is its own.

  sd_bench_peers.py ENGINE PHASE SIZE [sdxl] [bf16] [batch=N] [steps=N]
    ENGINE: torch | openvino
    PHASE:  unet (one UNet call, batch 2 = one guided step) | vae (decode one latent) |
            clip (encode one 77-token prompt) | txt2img (torch: the whole pipeline, Euler a, guidance
            7.5, as sd_bench's; the prompt is given as embeddings, a CLIP call less than ours) |
            gemm (this machine's matmul peak, f32 and bf16, 3072³, the best of 8)
  sd_bench_peers.py run ENGINE -- COMMAND...
    one whole process (ours: `mintframe generate`; sdcpp: `sd-cli`) timed from outside: wall
    seconds and the child's peak RSS; for sd-cli also its own sampling and decode timings
  sd_bench_peers.py single OUT.safetensors [f16]
    the real-size SD 1.5 with seeded random weights as an original-layout (A1111) single file,
    the file stable-diffusion.cpp and ours both load for the whole-process txt2img pair

Prints one JSON line like sd_bench's: {"engine", "phase", "size", "dtype", "seconds": [..],
"peak_rss_mib", "threads"}. Threads: torch and OpenVINO are given the machine's cores (2 here)."""
import json
import os
import resource
import sys
import time

import torch
from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

SD15_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=768,
    attention_head_dim=8,
)
SDXL_UNET = dict(
    sample_size=128,
    in_channels=4,
    out_channels=4,
    block_out_channels=(320, 640, 1280),
    layers_per_block=2,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10),
    attention_head_dim=(5, 10, 20),
    cross_attention_dim=2048,
    use_linear_projection=True,
    addition_embed_type="text_time",
    addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)
SD_VAE = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    block_out_channels=(128, 256, 512, 512),
    layers_per_block=2,
    latent_channels=4,
    norm_num_groups=32,
    sample_size=512,
)
CLIP_L = CLIPTextConfig(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
    projection_dim=768, bos_token_id=49406, eos_token_id=49407,
)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10


def run(fn, repeats=2):
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(round(time.perf_counter() - t, 3))
    return out


def inputs(phase, size, sdxl, batch):
    lat = size // 8
    g = torch.Generator().manual_seed(0)
    if phase == "unet":
        d = dict(
            sample=torch.randn(batch, 4, lat, lat, generator=g),
            timestep=torch.tensor(999.0),
            encoder_hidden_states=torch.randn(batch, 77, 2048 if sdxl else 768, generator=g),
        )
        if sdxl:
            d["added_cond_kwargs"] = dict(
                text_embeds=torch.randn(batch, 1280, generator=g),
                time_ids=torch.tensor([[size, size, 0, 0, size, size]] * batch, dtype=torch.float32),
            )
        return d
    if phase == "vae":
        return dict(z=torch.randn(1, 4, lat, lat, generator=g))
    return dict(input_ids=torch.randint(0, 49406, (1, 77), generator=g))


def model(phase, sdxl):
    if phase == "unet":
        return UNet2DConditionModel(**(SDXL_UNET if sdxl else SD15_UNET)).eval()
    if phase == "vae":
        return AutoencoderKL(**SD_VAE).eval()
    return CLIPTextModel(CLIP_L).eval()


def bench_torch(phase, size, sdxl, bf16, batch, steps):
    dtype = torch.bfloat16 if bf16 else torch.float32
    if phase == "txt2img":
        pipe = StableDiffusionPipeline(
            vae=AutoencoderKL(**SD_VAE), text_encoder=CLIPTextModel(CLIP_L),
            tokenizer=None, unet=UNet2DConditionModel(**SD15_UNET),
            scheduler=EulerAncestralDiscreteScheduler(
                beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1),
            safety_checker=None, feature_extractor=None, requires_safety_checker=False,
        ).to(dtype)
        pipe.set_progress_bar_config(disable=True)
        emb = torch.randn(1, 77, 768, dtype=dtype)
        with torch.inference_mode():
            return run(lambda: pipe(prompt_embeds=emb, negative_prompt_embeds=emb, num_inference_steps=steps,
                                    guidance_scale=7.5, height=size, width=size), repeats=1)
    m = model(phase, sdxl).to(dtype)
    x = inputs(phase, size, sdxl, batch)
    x = {k: (v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in x.items()}
    if "added_cond_kwargs" in x:
        x["added_cond_kwargs"] = {k: v.to(dtype) for k, v in x["added_cond_kwargs"].items()}
    with torch.inference_mode():
        if phase == "vae":
            return run(lambda: m.decode(x["z"]))
        return run(lambda: m(**x))


def bench_openvino(phase, size, sdxl, bf16, batch):
    import openvino as ov

    m = model(phase, sdxl)
    x = inputs(phase, size, sdxl, batch)
    if phase == "vae":
        class Decode(torch.nn.Module):
            def __init__(self, vae):
                super().__init__()
                self.vae = vae

            def forward(self, z):
                return self.vae.decode(z).sample
        m = Decode(m)
        example = (x["z"],)
    elif phase == "unet":
        class Unet(torch.nn.Module):
            def __init__(self, unet):
                super().__init__()
                self.unet = unet

            def forward(self, sample, timestep, ctx, *added):
                kw = dict(added_cond_kwargs=dict(text_embeds=added[0], time_ids=added[1])) if added else {}
                return self.unet(sample, timestep, encoder_hidden_states=ctx, **kw).sample
        m = Unet(m)
        example = (x["sample"], x["timestep"], x["encoder_hidden_states"])
        if sdxl:
            example += (x["added_cond_kwargs"]["text_embeds"], x["added_cond_kwargs"]["time_ids"])
    else:
        example = (x["input_ids"],)
    with torch.no_grad():
        ov_model = ov.convert_model(m, example_input=example)
    del m
    core = ov.Core()
    cfg = {"INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32", "INFERENCE_NUM_THREADS": str(os.cpu_count())}
    compiled = core.compile_model(ov_model, "CPU", cfg)
    req = compiled.create_infer_request()
    feed = [e.numpy() for e in example]
    return run(lambda: req.infer(feed))


def gemm_peak(bf16):
    n = 3072
    dtype = torch.bfloat16 if bf16 else torch.float32
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    secs = run(lambda: torch.mm(a, b), repeats=8)
    return secs, 2 * n**3 / min(secs) / 1e9


def unet_flops(size, sdxl, batch):
    from torch.utils.flop_counter import FlopCounterMode

    m = model("unet", sdxl)
    x = inputs("unet", size, sdxl, batch)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        m(**x)
    convs = sum(v for k, v in fc.get_flop_counts()["Global"].items() if "convolution" in str(k))
    return fc.get_total_flops(), convs


def single_file(path, f16):
    """SD 1.5's real-size UNet, VAE and CLIP-L with random weights, under their ldm names (the
    mapping the fixtures check against diffusers' own single-file converters)."""
    import ldm
    from safetensors.torch import save_file

    u, v, t = UNet2DConditionModel(**SD15_UNET), AutoencoderKL(**SD_VAE), CLIPTextModel(CLIP_L)
    attention = [b.startswith("CrossAttn") for b in u.config.down_block_types]
    sd = {}
    for k, w in u.state_dict().items():
        sd["model.diffusion_model." + ldm.unet(k, u.config.layers_per_block, attention)] = w
    levels = len(v.config.block_out_channels)
    for k, w in v.state_dict().items():
        name = "first_stage_model." + ldm.vae(k, levels)
        sd[name] = w[:, :, None, None] if ".mid.attn_1." in name and w.dim() == 2 else w
    for k, w in t.state_dict().items():
        sd["cond_stage_model.transformer." + k] = w
    dtype = torch.float16 if f16 else torch.float32
    save_file({k: w.detach().to(dtype).contiguous() for k, w in sd.items()}, path)


def run_process(engine, cmd):
    """Wall time and peak RSS of one process, as farm-bench reads them (wait4's rusage)."""
    import re
    import subprocess

    t = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        sys.stderr.write(log[-2000:])
        sys.exit(f"{cmd[0]} failed ({status})")
    out = dict(engine=engine, phase="whole", seconds=[round(wall, 2)], peak_rss_mib=usage.ru_maxrss >> 10,
               cpu_s=round(usage.ru_utime + usage.ru_stime, 1), threads=os.cpu_count())
    if engine == "sdcpp":
        # Its own figures: "sampling completed, taking 16.19s", "decode_first_stage completed, taking 7.99s".
        for key, pat in (("sampling_s", r"sampling completed, taking ([0-9.]+)s"),
                         ("decode_s", r"decode_first_stage completed, taking ([0-9.]+)s"),
                         ("params_mib", r"total params memory size = ([0-9.]+)MB")):
            m = re.search(pat, log)
            if m:
                out[key] = float(m.group(1))
    print(json.dumps(out))


def main():
    if sys.argv[1] == "run":
        run_process(sys.argv[2], sys.argv[sys.argv.index("--") + 1:])
        return
    if sys.argv[1] == "single":
        torch.manual_seed(0)
        single_file(sys.argv[2], "f16" in sys.argv[3:])
        return
    engine, phase, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    flags = sys.argv[4:]
    sdxl, bf16 = "sdxl" in flags, "bf16" in flags
    batch = next((int(f[6:]) for f in flags if f.startswith("batch=")), 2 if phase in ("unet", "flops") else 1)
    steps = next((int(f[6:]) for f in flags if f.startswith("steps=")), 1)
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    if phase == "gemm":
        secs, gflops = gemm_peak(bf16)
        print(json.dumps(dict(engine="torch", phase="gemm", dtype="bf16" if bf16 else "f32",
                              seconds=secs, gflops=round(gflops, 1), threads=os.cpu_count())))
        return
    if phase == "flops":
        total, convs = unet_flops(size, sdxl, batch)
        print(json.dumps(dict(engine="torch", phase="flops", size=size, arch="sdxl" if sdxl else "sd15",
                              batch=batch, flops=total, conv_flops=convs)))
        return
    if engine == "torch":
        secs = bench_torch(phase, size, sdxl, bf16, batch, steps)
        version = torch.__version__
    else:
        secs = bench_openvino(phase, size, sdxl, bf16, batch)
        import openvino
        version = openvino.__version__
    print(json.dumps(dict(
        engine=engine, version=version, phase=phase, arch="sdxl" if sdxl else "sd15", size=size,
        dtype="bf16" if bf16 else "f32", batch=batch, seconds=secs, peak_rss_mib=peak_rss_mib(),
        threads=os.cpu_count(),
    )))


if __name__ == "__main__":
    main()
