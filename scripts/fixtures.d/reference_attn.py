"""Reference attention ("reference-only") on tiny random UNets of SD 1.5 and SDXL structure.

diffusers ships reference-only as the community pipelines `stable_diffusion_reference.py` and
`stable_diffusion_controlnet_reference.py`. Their hook is a closure defined inside the
pipeline's `__call__`, so it cannot be imported on its own; this script installs the same hook
on every `BasicTransformerBlock` of a diffusers `UNet2DConditionModel` (plain LayerNorm blocks,
as SD 1.x/2.x and SDXL have):

  write: the block appends its `norm1` output to its bank and attends as usual;
  read:  the block's self-attention takes `cat([norm1 output] + bank, dim=1)` as its keys and
         values (`attention_auto_machine_weight` = 1, every block), then
         out = style_fidelity * out_c + (1 - style_fidelity) * out_uc, where out_c is out_uc
         with the unconditional rows (`uc_mask`, the first half of a CFG batch) attended
         without the bank; the bank is then cleared.

The reference latents are 6×6 while the image's are 8×12: the banks join along the token
axis, so the reference need not have the image's size.

For each of `sd15` and `sdxl` this writes OUT_DIR/<name>.safetensors: `unet.*`, the inputs
`in.x` (2,4,8,12; uncond then cond), `in.ref` (2,4,6,6), `in.t`, `in.ctx` (and SDXL's added
conditions), and `out.plain` (no hook), `out.sf50` (style fidelity 0.5), `out.sf0` (0.0).

Usage: reference_attn.py OUT_DIR"""
import os
import sys

import diffusers
import torch
from diffusers.models.attention import BasicTransformerBlock
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from controlnet import CONFIGS, randomise  # noqa: E402

STATE = {"mode": None, "style_fidelity": 0.0}


def hooked(self, hidden_states, attention_mask=None, encoder_hidden_states=None,
           encoder_attention_mask=None, timestep=None, cross_attention_kwargs=None,
           class_labels=None, added_cond_kwargs=None):
    norm = self.norm1(hidden_states)
    mode = STATE["mode"]
    if mode == "read":
        uc = self.attn1(norm, encoder_hidden_states=torch.cat([norm] + self.bank, dim=1))
        c = uc.clone()
        sf = STATE["style_fidelity"]
        if sf > 0:
            mask = torch.tensor([True, False])
            c[mask] = self.attn1(norm[mask], encoder_hidden_states=norm[mask])
        attn = sf * c + (1.0 - sf) * uc
        self.bank.clear()
    else:
        if mode == "write":
            self.bank.append(norm.detach().clone())
        attn = self.attn1(norm)
    hidden_states = attn + hidden_states
    norm = self.norm2(hidden_states)
    hidden_states = self.attn2(norm, encoder_hidden_states=encoder_hidden_states) + hidden_states
    return self.ff(self.norm3(hidden_states)) + hidden_states


def make(name, cfg, out_dir, seed):
    torch.manual_seed(seed + 100)
    unet_cfg = {k: v for k, v in cfg.items() if k != "conditioning_embedding_out_channels"}
    unet_cfg["up_block_types"] = tuple(
        "CrossAttnUpBlock2D" if t.startswith("CrossAttn") else "UpBlock2D"
        for t in reversed(cfg["down_block_types"])
    )
    unet_cfg["out_channels"] = 4
    unet = diffusers.UNet2DConditionModel(**unet_cfg).float().eval()
    randomise(unet)
    blocks = [m for m in unet.modules() if isinstance(m, BasicTransformerBlock)]
    assert blocks and all(type(b.norm1) is torch.nn.LayerNorm for b in blocks)

    x = torch.randn(2, 4, 8, 12)
    ref = torch.randn(2, 4, 6, 6)
    t = torch.tensor([351.0, 351.0])
    ctx = torch.randn(2, 7, 32)
    tensors = {"in.x": x, "in.ref": ref, "in.t": t, "in.ctx": ctx}
    kw = {}
    if cfg.get("addition_embed_type") == "text_time":
        text_embeds = torch.randn(2, 32)
        time_ids = torch.tensor([[64.0, 96.0, 0.0, 0.0, 64.0, 96.0]] * 2)
        kw["added_cond_kwargs"] = {"text_embeds": text_embeds, "time_ids": time_ids}
        tensors.update({"in.text_embeds": text_embeds, "in.time_ids": time_ids})
    with torch.no_grad():
        tensors["out.plain"] = unet(x, t, ctx, **kw).sample
        for b in blocks:
            b.forward = hooked.__get__(b, BasicTransformerBlock)
            b.bank = []
        for tag, sf in (("sf50", 0.5), ("sf0", 0.0)):
            STATE.update(mode="write", style_fidelity=sf)
            unet(ref, t, ctx, **kw)
            assert all(len(b.bank) == 1 for b in blocks)
            STATE["mode"] = "read"
            tensors[f"out.{tag}"] = unet(x, t, ctx, **kw).sample
            assert all(not b.bank for b in blocks)
    d = (tensors["out.sf50"] - tensors["out.plain"]).abs().max().item()
    assert d > 1e-3, f"the hook changed nothing ({d})"
    tensors.update({f"unet.{k}": v.detach().float() for k, v in unet.state_dict().items()})
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(
        tensors,
        os.path.join(out_dir, f"{name}.safetensors"),
        metadata={"made_by": f"scripts/fixtures reference_attn (torch {torch.__version__}, diffusers {diffusers.__version__})"},
    )
    print(name, "blocks", len(blocks), "sf50 vs plain", f"{d:.4f}")


if __name__ == "__main__":
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    for seed, (name, cfg) in enumerate(CONFIGS.items()):
        make(name, cfg, out_dir, seed)
