"""LayerDiffuse reference outputs on tiny random weights in the real key layout.

The reference code is LayerDiffuse's own (`lib_layerdiffuse/vae.py` of
lllyasviel/LayerDiffuse_DiffusersCLI, Apache-2.0), imported from a checkout given as the first
argument, never copied here. `UNet1024` (the transparent decoder) is built with the smallest
channels that keep every key of the real file (4, 4, 8, 12, 16, 24, 24); its latent injection
gets non-zero weights (the real initialisation is zero and would hide a wrong latent path).
The offset encoder keeps its fixed channels; its weights are stored in float16 and the
reference run uses those same (rounded) values. Inputs are 128×64 (non-square, so the rotations
of the 8-way augmentation change the shape)."""
import importlib.util
import sys

import numpy as np
import torch
from safetensors.torch import save_file

src, out_path = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("ld_vae", f"{src}/lib_layerdiffuse/vae.py")
ld = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ld)

torch.manual_seed(0)
dec = ld.UNet1024(in_channels=3, out_channels=4, block_out_channels=(4, 4, 8, 12, 16, 24, 24)).eval()
with torch.no_grad():
    for name, p in dec.named_parameters():
        # Weights large enough that every path moves the output, small enough to stay finite.
        p.copy_(torch.randn_like(p) * (0.3 if p.dim() > 1 else 0.1))
enc = ld.LatentTransparencyOffsetEncoder().eval()
with torch.no_grad():
    for name, p in enc.named_parameters():
        p.copy_((torch.randn_like(p) * 0.05).half().float())

pixel = torch.rand(1, 3, 128, 64)
latent = torch.randn(1, 4, 16, 8)
rgba = torch.rand(1, 4, 32, 32)


class Wrapper(ld.TransparentVAEDecoder):
    """The reference's wrapper, around our tiny model instead of a file."""

    def __init__(self, model):
        torch.nn.Module.__init__(self)
        self.model = model
        self.dtype = torch.float32


w = Wrapper(dec)
with torch.no_grad():
    single = w.estimate_single_pass(pixel, latent)
    augmented = w.estimate_augmented(pixel, latent)
    offset = enc(rgba)

tensors = {f"decoder.{k}": v.contiguous() for k, v in dec.state_dict().items()}
tensors.update({f"encoder.{k}": v.half().contiguous() for k, v in enc.state_dict().items()})
tensors.update(
    {
        "in.pixel": pixel,
        "in.latent": latent,
        "in.rgba": rgba,
        "out.single": single.contiguous(),
        "out.augmented": augmented.contiguous(),
        "out.offset": offset.contiguous(),
    }
)
save_file(tensors, out_path, metadata={"made_by": "scripts/fixtures layerdiffuse", "torch": torch.__version__})
print("wrote", out_path, "decoder keys", len(dec.state_dict()), "augmented range", float(augmented.min()), float(augmented.max()))
