"""Tiled VAE decoding, as diffusers does it, for `parity_models`: the sd15 parity folder's VAE
(`tests/fixtures/parity/sd15/vae`, made by parity.py) decoding one 32×32 latent whole and in
16-latent tiles with a quarter overlap (`enable_tiling`, `tile_latent_min_size` 16,
`tile_overlap_factor` 0.25). Tiles see their own GroupNorm statistics, so no tiled decode equals
the whole one; the Rust test holds ours to at least diffusers' own closeness.

Writes OUT.safetensors: in.latent (scaled, as the UNet leaves it), out.whole, out.tiled (pixels
in [-1, 1]); metadata tile, overlap.

Usage: vae_tiling.py SD15_FOLDER OUT.safetensors"""
import sys

import torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file


def main(folder, out):
    vae = AutoencoderKL.from_pretrained(folder, subfolder="vae", torch_dtype=torch.float32).eval()
    latent = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(31))
    z = latent / vae.config.scaling_factor
    with torch.no_grad():
        whole = vae.decode(z).sample
        vae.enable_tiling()
        vae.tile_latent_min_size = 16
        vae.tile_sample_min_size = 16 * 8
        vae.tile_overlap_factor = 0.25
        tiled = vae.decode(z).sample
    assert not torch.equal(whole, tiled), "the decode did not tile"
    save_file({"in.latent": latent, "out.whole": whole.contiguous(), "out.tiled": tiled.contiguous()},
              out, metadata={"tile": "16", "overlap": "4"})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
