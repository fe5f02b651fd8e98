"""Reference ControlNet outputs (diffusers `ControlNetModel`) and a UNet that takes them, on tiny
random configs of SD 1.5 and SDXL structure.

For each of `sd15` and `sdxl` this writes, under OUT_DIR:
  <name>/config.json, <name>/diffusion_pytorch_model.safetensors
      the ControlNet as `save_pretrained` writes it (what users download from the Hub);
  <name>_single.safetensors
      the same weights under the original ControlNet names (`control_model.input_blocks…`,
      `input_hint_block`, `zero_convs`, `middle_block_out`), as A1111 and ComfyUI users have them.
      This script checks that diffusers' own single-file converter maps every one of those names
      back to the diffusers name and the same tensor, so the names are the ones real files use;
  <name>_io.safetensors
      `unet.*` (a UNet2DConditionModel of the same shape), the inputs (`in.*`) and the outputs:
      `out.down.<k>` and `out.mid` at conditioning scale 0.8, `guess.down.<k>`/`guess.mid` in
      guess mode at scale 1.0, and `out.unet` — the UNet's prediction with the scale-0.8 residuals
      added (diffusers' `down_block_additional_residuals` / `mid_block_additional_residual`).

Every parameter is redrawn from a seeded normal as in unet_grad.py: ControlNet zero-initialises
its 1×1 output convolutions and conditioning conv_out, which would hide any error behind them.
The conditioning embedding has four widths (three stride-2 stages: the image is 8× the latent,
as in released ControlNets). The latent is 8×12 so a swapped height and width shows.

Usage: controlnet.py OUT_DIR"""
import json
import os
import sys

import diffusers
import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint
from safetensors.torch import save_file

# The UNet's resnet names, shared with the SD single-file fixture (same folder).
from ldm import _resnet as resnet

COMMON = dict(
    in_channels=4,
    block_out_channels=(32, 64),
    layers_per_block=1,
    cross_attention_dim=32,
    norm_num_groups=8,
    norm_eps=1e-5,
    flip_sin_to_cos=True,
    freq_shift=0,
)

CONFIGS = {
    "sd15": dict(
        COMMON,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        attention_head_dim=2,
        use_linear_projection=False,
        conditioning_embedding_out_channels=(8, 8, 16, 16),
    ),
    # SDXL's shape: linear projections, two transformer layers at the inner level, text-time
    # added embeddings (pooled width 32 + six ids × 8 = 80 inputs).
    "sdxl": dict(
        COMMON,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        attention_head_dim=(2, 4),
        transformer_layers_per_block=(1, 2),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=80,
        conditioning_embedding_out_channels=(8, 8, 16, 16),
    ),
}


def randomise(model):
    norms = (torch.nn.GroupNorm, torch.nn.LayerNorm)
    with torch.no_grad():
        for module in model.modules():
            for pname, p in module.named_parameters(recurse=False):
                if isinstance(module, norms) and pname == "weight":
                    p.copy_(1.0 + 0.1 * torch.randn_like(p))
                elif p.dim() > 1:
                    p.copy_(min(0.2, p[0].numel() ** -0.5) * torch.randn_like(p))
                else:
                    p.copy_(0.05 * torch.randn_like(p))


def ldm_name(name, lpb, hint_blocks):
    """The original ControlNet name of a diffusers ControlNetModel parameter."""
    simple = {
        "time_embedding.linear_1.": "time_embed.0.",
        "time_embedding.linear_2.": "time_embed.2.",
        "add_embedding.linear_1.": "label_emb.0.0.",
        "add_embedding.linear_2.": "label_emb.0.2.",
        "conv_in.": "input_blocks.0.0.",
        "controlnet_cond_embedding.conv_in.": "input_hint_block.0.",
        "controlnet_cond_embedding.conv_out.": f"input_hint_block.{2 * hint_blocks + 2}.",
        "controlnet_mid_block.": "middle_block_out.0.",
        "mid_block.attentions.0.": "middle_block.1.",
    }
    for d, l in simple.items():
        if name.startswith(d):
            return l + name[len(d):]
    p = name.split(".")
    if p[0] == "controlnet_cond_embedding" and p[1] == "blocks":
        return f"input_hint_block.{2 * int(p[2]) + 2}." + ".".join(p[3:])
    if p[0] == "controlnet_down_blocks":
        return f"zero_convs.{p[1]}.0." + ".".join(p[2:])
    if p[0] == "mid_block" and p[1] == "resnets":
        return f"middle_block.{2 * int(p[2])}." + resnet(".".join(p[3:]))
    if p[0] == "down_blocks":
        i = int(p[1])
        if p[2] == "resnets":
            return f"input_blocks.{1 + i * (lpb + 1) + int(p[3])}.0." + resnet(".".join(p[4:]))
        if p[2] == "attentions":
            return f"input_blocks.{1 + i * (lpb + 1) + int(p[3])}.1." + ".".join(p[4:])
        if p[2] == "downsamplers":
            return f"input_blocks.{(i + 1) * (lpb + 1)}.0.op." + ".".join(p[5:])
    raise KeyError(name)


def make(name, cfg, out_dir, seed):
    torch.manual_seed(seed)
    net = ControlNetModel(**cfg).float().eval()
    randomise(net)
    unet_cfg = {k: v for k, v in cfg.items() if k != "conditioning_embedding_out_channels"}
    unet_cfg["up_block_types"] = tuple(
        "CrossAttnUpBlock2D" if t.startswith("CrossAttn") else "UpBlock2D"
        for t in reversed(cfg["down_block_types"])
    )
    unet_cfg["out_channels"] = 4
    unet = UNet2DConditionModel(**unet_cfg).float().eval()
    randomise(unet)

    folder = os.path.join(out_dir, name)
    net.save_pretrained(folder, safe_serialization=True)
    # save_pretrained stamps the diffusers version and a path; keep the file stable.
    with open(os.path.join(folder, "config.json")) as f:
        conf = json.load(f)
    conf.pop("_name_or_path", None)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(conf, f, indent=2, sort_keys=True)
        f.write("\n")

    state = {k: v.detach().float().contiguous() for k, v in net.state_dict().items()}
    hint_blocks = len(net.controlnet_cond_embedding.blocks)
    single = {"control_model." + ldm_name(k, cfg["layers_per_block"], hint_blocks): v for k, v in state.items()}
    assert len(single) == len(state), "two diffusers names mapped to one original name"
    back = convert_controlnet_checkpoint(single, dict(cfg))
    # diffusers' converter knows SD 1.x/2.x ControlNets; SDXL's added embeddings it leaves out.
    expect = {k for k in state if not k.startswith("add_embedding.")}
    assert set(back) == expect, (sorted(set(back) ^ expect))[:10]
    for k in expect:
        assert torch.equal(back[k], state[k]), k
    save_file(single, os.path.join(out_dir, f"{name}_single.safetensors"), metadata={"made_by": "scripts/fixtures controlnet"})

    x = torch.randn(2, 4, 8, 12)
    t = torch.tensor([17.0, 503.0])
    ctx = torch.randn(2, 7, 32)
    cond = torch.rand(2, 3, 64, 96)
    kw = {}
    tensors = {"in.x": x, "in.t": t, "in.ctx": ctx, "in.cond": cond}
    if cfg.get("addition_embed_type") == "text_time":
        text_embeds = torch.randn(2, 32)
        time_ids = torch.tensor([[64.0, 96.0, 0.0, 0.0, 64.0, 96.0], [128.0, 96.0, 4.0, 8.0, 64.0, 96.0]])
        kw["added_cond_kwargs"] = {"text_embeds": text_embeds, "time_ids": time_ids}
        tensors.update({"in.text_embeds": text_embeds, "in.time_ids": time_ids})
    with torch.no_grad():
        down, mid = net(x, t, ctx, cond, conditioning_scale=0.8, return_dict=False, **kw)
        gdown, gmid = net(x, t, ctx, cond, conditioning_scale=1.0, guess_mode=True, return_dict=False, **kw)
        pred = unet(
            x, t, ctx,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
            **kw,
        ).sample
    for k, d in enumerate(down):
        tensors[f"out.down.{k}"] = d
    for k, d in enumerate(gdown):
        tensors[f"guess.down.{k}"] = d
    tensors["out.mid"] = mid
    tensors["guess.mid"] = gmid
    tensors["out.unet"] = pred
    tensors.update({f"unet.{k}": v.detach().float() for k, v in unet.state_dict().items()})
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    for k, v in tensors.items():
        assert torch.isfinite(v).all(), k
    save_file(
        tensors,
        os.path.join(out_dir, f"{name}_io.safetensors"),
        metadata={"made_by": f"scripts/fixtures controlnet (torch {torch.__version__}, diffusers {diffusers.__version__})"},
    )
    print(name, "residuals", len(down), "mid", tuple(mid.shape), "pred range", f"{pred.min().item():.3f}..{pred.max().item():.3f}",
          "params", sum(v.numel() for v in state.values()))


if __name__ == "__main__":
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for seed, (name, cfg) in enumerate(CONFIGS.items()):
        make(name, cfg, out_dir, seed)
