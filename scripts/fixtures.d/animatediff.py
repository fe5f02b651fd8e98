"""AnimateDiff motion modules: diffusers' `MotionAdapter` in a `UNetMotionModel` built from a
tiny random SD 1.5-shaped `UNet2DConditionModel`.

For each of `v2` (a motion module in the middle block, 32 positions) and `v1` (none there, 24
positions, as the first release) this writes OUT_DIR/<name>/:
  adapter/config.json, adapter/diffusion_pytorch_model.safetensors
      the adapter as `save_pretrained` writes it;
  <name>_original.safetensors (in OUT_DIR)
      the same weights under AnimateDiff's own names (`…motion_modules.N.temporal_transformer.…`,
      `attention_blocks.K`, `norms.K`, `ff_norm`, `pos_encoder.pe`), as users download them
      (`mm_sd_v15_v2.safetensors`). diffusers' own single-file converter is run on them and must
      give back every diffusers name with the same tensor, so the names are the real ones;
  <name>/io.safetensors
      `unet.*` (the 2-D UNet), the inputs — `in.x` (1 batch × 6 frames, laid out frame-major as
      (6, 4, 8, 12), the way our pipeline batches frames), `in.t` (one per frame), `in.ctx` (one
      per frame) — and `out.motion`, UNetMotionModel's prediction in the same layout.

Every parameter is redrawn from a seeded normal (as controlnet.py does): AnimateDiff
zero-initialises each motion module's proj_out, which would hide any error behind it.

Usage: animatediff.py OUT_DIR"""
import json
import os
import sys

import diffusers
import torch
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
from diffusers.loaders.single_file_utils import convert_animatediff_checkpoint_to_diffusers
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from controlnet import CONFIGS, randomise  # noqa: E402

FRAMES = 6


def original_name(k):
    """AnimateDiff's name for a diffusers MotionAdapter parameter."""
    parts = k.split(".")
    # down_blocks.I.motion_modules.J.<rest> / mid_block.motion_modules.J.<rest> / up_blocks...
    head = 4 if parts[0] in ("down_blocks", "up_blocks") else 3
    rest = ".".join(parts[head:])
    rest = (
        rest.replace(".attn1.", ".attention_blocks.0.")
        .replace(".attn2.", ".attention_blocks.1.")
        .replace(".norm1.", ".norms.0.")
        .replace(".norm2.", ".norms.1.")
        .replace(".norm3.", ".ff_norm.")
    )
    return ".".join(parts[:head]) + ".temporal_transformer." + rest


def make(name, mid, positions, out_dir, seed):
    torch.manual_seed(seed)
    cfg = {k: v for k, v in CONFIGS["sd15"].items() if k != "conditioning_embedding_out_channels"}
    # AnimateDiff sits on SD 1.5's layout: cross-attention down blocks, then a plain one.
    cfg["up_block_types"] = tuple(
        "CrossAttnUpBlock2D" if t.startswith("CrossAttn") else "UpBlock2D"
        for t in reversed(cfg["down_block_types"])
    )
    cfg["out_channels"] = 4
    unet = UNet2DConditionModel(**cfg).float().eval()
    randomise(unet)
    adapter = MotionAdapter(
        block_out_channels=cfg["block_out_channels"],
        motion_layers_per_block=cfg["layers_per_block"],
        motion_transformer_layers_per_block=1,
        motion_mid_block_layers_per_block=1,
        motion_num_attention_heads=2,
        motion_norm_num_groups=8,
        motion_max_seq_length=positions,
        use_motion_mid_block=mid,
    ).float().eval()
    randomise(adapter)
    folder = os.path.join(out_dir, name, "adapter")
    adapter.save_pretrained(folder, safe_serialization=True)
    with open(os.path.join(folder, "config.json")) as f:
        conf = json.load(f)
    conf.pop("_name_or_path", None)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(conf, f, indent=2, sort_keys=True)
        f.write("\n")

    state = {k: v.detach().float().contiguous() for k, v in adapter.state_dict().items()}
    original = {original_name(k): v for k, v in state.items()}
    # The positional table AnimateDiff files carry (a buffer diffusers rebuilds).
    for k in list(original):
        if k.endswith(".attention_blocks.0.to_q.weight") or k.endswith(".attention_blocks.1.to_q.weight"):
            dim = original[k].shape[1]
            position = torch.arange(positions).unsqueeze(1)
            div = torch.exp(torch.arange(0, dim, 2) * (-torch.log(torch.tensor(10000.0)) / dim))
            pe = torch.zeros(1, positions, dim)
            pe[0, :, 0::2] = torch.sin(position * div)
            pe[0, :, 1::2] = torch.cos(position * div)
            original[k.replace(".to_q.weight", ".pos_encoder.pe")] = pe
    back = convert_animatediff_checkpoint_to_diffusers(dict(original))
    assert set(back) == set(state), sorted(set(back) ^ set(state))[:10]
    for k in state:
        assert torch.equal(back[k], state[k]), k
    save_file(original, os.path.join(out_dir, f"{name}_original.safetensors"),
              metadata={"made_by": "scripts/fixtures animatediff"})

    motion = UNetMotionModel.from_unet2d(unet, adapter).float().eval()
    b, f = 1, FRAMES
    x = torch.randn(b, 4, f, 8, 12)
    t = torch.tensor([321.0])
    ctx = torch.randn(b, 7, 32)
    with torch.no_grad():
        out = motion(x, t, ctx.repeat_interleave(f, dim=0)).sample
    # Frame-major, as our pipeline lays a clip out: (b·f, c, h, w).
    flat = lambda v: v.permute(0, 2, 1, 3, 4).reshape(b * f, 4, 8, 12).contiguous()
    tensors = {
        "in.x": flat(x),
        "in.t": t.repeat(b * f),
        "in.ctx": ctx.repeat_interleave(f, dim=0).contiguous(),
        "out.motion": flat(out),
    }
    with torch.no_grad():
        tensors["out.plain"] = unet(tensors["in.x"], tensors["in.t"], tensors["in.ctx"]).sample
    tensors.update({f"unet.{k}": v.detach().float() for k, v in unet.state_dict().items()})
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    for k, v in tensors.items():
        assert torch.isfinite(v).all(), k
    d = (tensors["out.motion"] - tensors["out.plain"]).abs().max().item()
    assert d > 1e-3, f"the motion modules changed nothing ({d})"
    save_file(tensors, os.path.join(out_dir, name, "io.safetensors"),
              metadata={"made_by": f"scripts/fixtures animatediff (torch {torch.__version__}, diffusers {diffusers.__version__})"})
    print(name, "adapter params", sum(v.numel() for v in state.values()), "motion vs plain", f"{d:.4f}")


if __name__ == "__main__":
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    make("v2", True, 32, out_dir, 7)
    make("v1", False, 24, out_dir, 8)
