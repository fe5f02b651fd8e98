"""AnimateDiff MotionLoRA: a LoRA on the motion modules' attention projections, in the layout
AnimateDiff's own MotionLoRA files use (`…temporal_transformer.transformer_blocks.0.
attention_blocks.N.processor.to_{q,k,v,out}_lora.{down,up}.weight`, no alpha: the update is
`up(down(x))` times the LoRA's scale, as AnimateDiff's LoRALinearLayer adds it).

Built on the v2 fixture of animatediff.py (its adapter and UNet, same seeds). The reference is
diffusers' UNetMotionModel with the LoRA merged into the adapter's weights at scale 0.8
(W + 0.8·up·down: what the LoRA layer adds, folded in), run on the same inputs.

Writes OUT_DIR/:
  motion_lora.safetensors   the LoRA (rank 4), AnimateDiff names;
  io.safetensors            `out.lora` (the merged model's prediction, frame-major), with
                            `in.*` and `unet.*` as in animatediff/v2/io.safetensors.

Usage: motion_lora.py ANIMATEDIFF_DIR OUT_DIR"""
import os
import sys

import torch
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(__file__))
from animatediff import original_name  # noqa: E402
from controlnet import CONFIGS  # noqa: E402

src, out_dir = sys.argv[1], sys.argv[2]
SCALE = 0.8
RANK = 4

adapter = MotionAdapter.from_pretrained(os.path.join(src, "v2", "adapter")).float().eval()
io = load_file(os.path.join(src, "v2", "io.safetensors"))
cfg = {k: v for k, v in CONFIGS["sd15"].items() if k != "conditioning_embedding_out_channels"}
cfg["up_block_types"] = tuple(
    "CrossAttnUpBlock2D" if t.startswith("CrossAttn") else "UpBlock2D"
    for t in reversed(cfg["down_block_types"])
)
cfg["out_channels"] = 4
unet = UNet2DConditionModel(**cfg).float().eval()
unet.load_state_dict({k[len("unet."):]: v for k, v in io.items() if k.startswith("unet.")})

b, f = 1, io["in.x"].shape[0]
x = io["in.x"].reshape(b, f, 4, 8, 12).permute(0, 2, 1, 3, 4)
with torch.no_grad():
    again = UNetMotionModel.from_unet2d(unet, adapter).float().eval()(x, io["in.t"][:1], io["in.ctx"]).sample
same = (again.permute(0, 2, 1, 3, 4).reshape(b * f, 4, 8, 12) - io["out.motion"]).abs().max().item()
assert same < 1e-5, f"the v2 fixture does not come back ({same})"

g = torch.Generator().manual_seed(77)
lora = {}
state = adapter.state_dict()
for k, w in state.items():
    # Every attention projection of every motion module: to_q, to_k, to_v, to_out.0.
    for proj, name in (("to_q", "to_q"), ("to_k", "to_k"), ("to_v", "to_v"), ("to_out.0", "to_out")):
        if k.endswith(f".{proj}.weight") and (".attn1." in k or ".attn2." in k):
            out_f, in_f = w.shape
            down = torch.randn(RANK, in_f, generator=g) * 0.3
            up = torch.randn(out_f, RANK, generator=g) * 0.3
            base = original_name(k[: -len(f".{proj}.weight")])
            lora[f"{base}.processor.{name}_lora.down.weight"] = down.contiguous()
            lora[f"{base}.processor.{name}_lora.up.weight"] = up.contiguous()
            with torch.no_grad():
                state[k] = w + SCALE * up @ down
assert lora, "no attention projections found"
merged = MotionAdapter.from_config(adapter.config).float().eval()
merged.load_state_dict(state)
motion = UNetMotionModel.from_unet2d(unet, merged).float().eval()
with torch.no_grad():
    out = motion(x, io["in.t"][:1], io["in.ctx"]).sample
flat = out.permute(0, 2, 1, 3, 4).reshape(b * f, 4, 8, 12).contiguous()
d = (flat - io["out.motion"]).abs().max().item()
assert d > 1e-3, f"the LoRA changed nothing ({d})"
os.makedirs(out_dir, exist_ok=True)
save_file(lora, os.path.join(out_dir, "motion_lora.safetensors"),
          metadata={"made_by": "scripts/fixtures motion_lora"})
save_file({"out.lora": flat}, os.path.join(out_dir, "io.safetensors"),
          metadata={"made_by": f"scripts/fixtures motion_lora (torch {torch.__version__})"})
print("lora tensors", len(lora), "lora vs plain motion", f"{d:.4f}")
