"""TAESD's decoder (diffusers `AutoencoderTiny`) on a tiny random config in the released layer
structure — 4 levels, 3/3/3/1 blocks, nearest 2× upsampling, one width (16 here, 64 released)
— for `crates/diffusion/src/parity_models.rs`.

Writes under OUT_DIR:
  taesd/               the folder `save_pretrained` writes (config.json, safetensors, f32);
  taesd_io.safetensors
    in.latents         (2, 4, 6, 10) latents, as the UNet leaves them (TAESD's scaling_factor is 1),
                       drawn wide enough (σ = 2) that the decoder's tanh clamp to ±3 matters;
    out.image          `AutoencoderTiny.decode(latents).sample`, in [-1, 1] convention.

Usage: taesd.py OUT_DIR"""
import os
import sys

import torch
from diffusers import AutoencoderTiny
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
import controlnet  # noqa: E402  (the shared randomiser)


def main(out):
    torch.manual_seed(23)
    vae = AutoencoderTiny(
        encoder_block_out_channels=(16, 16, 16, 16),
        decoder_block_out_channels=(16, 16, 16, 16),
        num_encoder_blocks=(1, 3, 3, 3),
        num_decoder_blocks=(3, 3, 3, 1),
    ).eval()
    controlnet.randomise(vae)
    vae.save_pretrained(os.path.join(out, "taesd"), safe_serialization=True)
    latents = 2.0 * torch.randn(2, 4, 6, 10)
    with torch.no_grad():
        image = vae.decode(latents).sample
    save_file({"in.latents": latents.contiguous(), "out.image": image.contiguous()},
              os.path.join(out, "taesd_io.safetensors"))


if __name__ == "__main__":
    main(sys.argv[1])
