"""The PyTorch yardstick for `train_bench`: LoRA training steps/s of PyTorch diffusers + peft on
the same configuration — the SD 1.5 UNet (its real config, random weights: speed does not
depend on the values), frozen; rank-8 LoRA (alpha 8, peft's kaiming/zero initialisation, as
kohya's) on every linear layer and 1×1 convolution of the transformer blocks; AdamW (lr 1e-4,
weight decay 1e-2); batch 1; epsilon loss with min-SNR-5 weighting; float32 on the CPU. One
warm-up step, then `steps` timed steps. Prints one JSON line like train_bench.

    target/fixtures-venv/bin/python scripts/fixtures.d/lora_train_bench.py SIZE [STEPS]
"""
import json
import resource
import sys
import time

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel
from peft import LoraConfig

size = int(sys.argv[1]) if len(sys.argv) > 1 else 256
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
torch.manual_seed(0)
t0 = time.perf_counter()
unet = UNet2DConditionModel(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    cross_attention_dim=768,
    attention_head_dim=8,
)
unet.requires_grad_(False)
unet.add_adapter(
    LoraConfig(
        r=8,
        lora_alpha=8,
        init_lora_weights=True,
        target_modules=["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"],
    )
)
params = [p for p in unet.parameters() if p.requires_grad]
build_s = time.perf_counter() - t0
opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-2)
sched = DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000)
lat = size // 8
x0 = torch.randn(1, 4, lat, lat)
ctx = torch.randn(1, 77, 768)
ac = sched.alphas_cumprod


def step():
    noise = torch.randn_like(x0)
    t = torch.randint(0, 1000, (1,))
    noisy = sched.add_noise(x0, noise, t)
    pred = unet(noisy, t, ctx).sample
    snr = ac[t] / (1 - ac[t])
    w = torch.clamp(snr, max=5.0) / snr
    loss = (F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3)) * w).mean()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


step()
t1 = time.perf_counter()
loss = 0.0
for _ in range(steps):
    loss = step()
secs = time.perf_counter() - t1
print(
    json.dumps(
        {
            "size": size,
            "steps": steps,
            "steps_per_s": steps / secs,
            "s_per_step": secs / steps,
            "build_s": build_s,
            "trainable_params": sum(p.numel() for p in params),
            "last_loss": loss,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        }
    )
)
