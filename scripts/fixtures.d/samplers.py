"""Every sampler's schedule and steps, as diffusers computes them: the reference for
`crates/diffusion/src/parity_samplers.rs`.

For three released scheduler configs (SD 1.5: epsilon, `leading`, offset 1; SD 2.1:
v-prediction; SD-Turbo: `trailing`, offset 0) and each of our samplers — DDIM
(`DDIMScheduler`), Euler (`EulerDiscreteScheduler`), Euler a
(`EulerAncestralDiscreteScheduler`), DPM++ 2M Karras (`DPMSolverMultistepScheduler`,
`dpmsolver++`, order 2, Karras sigmas), LCM (`LCMScheduler`) — it writes:

- `{cfg}.{sampler}.{n}.timesteps` and `.sigmas` for 1, 4, 20 and 50 steps (float64);
- a 4-step chain: from `in.x0` with the model outputs `in.out.{i}` given (no UNet: a fixed
  output per step isolates the sampler), the sample after every step, `{cfg}.{sampler}.x.{i+1}`.
  Euler a's and LCM's noise is the chain's `in.noise.{i}` (diffusers' `randn_tensor` is
  replaced by one that returns it), so the Rust test can feed ours the same draws.

Conventions the test states: DDIM, LCM and DPM++ keep diffusers' samples in the variance-preserving
scale (x = √ᾱ·x₀ + √(1-ᾱ)·ε); Euler and Euler a in k-diffusion's (x = x₀ + σ·ε), as ours do.
Our DPM++ 2M works in k-diffusion's scale too, so the test compares x / √(σ²+1) with diffusers'.

Usage: samplers.py OUT.safetensors"""
import json
import sys

import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
)
from diffusers.schedulers import scheduling_euler_ancestral_discrete as euler_a_module
from diffusers.schedulers import scheduling_lcm as lcm_module
from safetensors.torch import save_file

BASE = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    num_train_timesteps=1000,
    clip_sample=False,
    set_alpha_to_one=False,
)
CONFIGS = {
    "sd15": dict(BASE, prediction_type="epsilon", timestep_spacing="leading", steps_offset=1),
    "sd21": dict(BASE, prediction_type="v_prediction", timestep_spacing="leading", steps_offset=1),
    "turbo": dict(BASE, prediction_type="epsilon", timestep_spacing="trailing", steps_offset=0),
}
# `from_config`, as a pipeline loads `scheduler_config.json`: each class takes the fields it knows.
SAMPLERS = {
    "ddim": lambda c: DDIMScheduler.from_config(c),
    "euler": lambda c: EulerDiscreteScheduler.from_config(c),
    "euler_a": lambda c: EulerAncestralDiscreteScheduler.from_config(c),
    "dpmpp_2m_karras": lambda c: DPMSolverMultistepScheduler.from_config(
        c, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True
    ),
    "lcm": lambda c: LCMScheduler.from_config(c),
}
CHAIN = 4


def main(out):
    g = torch.Generator().manual_seed(19)
    x0 = torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64)
    outs = [torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64) for _ in range(CHAIN)]
    noise = [torch.randn(1, 4, 8, 8, generator=g, dtype=torch.float64) for _ in range(CHAIN)]
    t = {"in.x0": x0}
    t.update({f"in.out.{i}": o for i, o in enumerate(outs)})
    t.update({f"in.noise.{i}": n for i, n in enumerate(noise)})

    draws = []
    given = lambda shape, **kw: draws.pop(0).to(kw.get("dtype") or torch.float64)  # noqa: E731
    euler_a_module.randn_tensor = given
    lcm_module.randn_tensor = given

    for cname, cfg in CONFIGS.items():
        for sname, make in SAMPLERS.items():
            for n in (1, 4, 20, 50):
                s = make(cfg)
                s.set_timesteps(n)
                t[f"{cname}.{sname}.{n}.timesteps"] = s.timesteps.to(torch.float64)
                if sname in ("euler", "euler_a", "dpmpp_2m_karras"):
                    t[f"{cname}.{sname}.{n}.sigmas"] = torch.as_tensor(s.sigmas, dtype=torch.float64)
            s = make(cfg)
            s.set_timesteps(CHAIN)
            draws[:] = list(noise)
            x = x0.clone()
            for i, ts in enumerate(s.timesteps):
                s.scale_model_input(x, ts)  # a pipeline's order; Euler's step asks for it
                x = s.step(outs[i], ts, x).prev_sample
                t[f"{cname}.{sname}.x.{i + 1}"] = x.to(torch.float64)
    meta = {"configs": json.dumps(CONFIGS), "chain": str(CHAIN)}
    save_file({k: v.contiguous() for k, v in t.items()}, out, metadata=meta)


if __name__ == "__main__":
    main(sys.argv[1])
