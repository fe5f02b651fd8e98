"""Reference forward, loss and gradients of a tiny SD1-style UNet (diffusers `UNet2DConditionModel`).

The training parity test builds the same UNet in candle from the `unet.*` weights here, runs the
same inputs, and compares the prediction, the loss and the gradient of every parameter and of the
input sample with PyTorch's autograd. The config is ours (two levels, 32/64 channels, one layer
per block, cross-attention only at the outer level and in the middle, 2 heads, context width 32),
small enough for a CPU test and a file of a few MB, but with every kind of block an SD1 UNet has:
resnets with and without a 1×1 shortcut, a downsampler, an upsampler, skip concatenation,
Transformer2DModel with conv proj_in/proj_out, self- and cross-attention and a GEGLU feed-forward.

Every parameter is re-drawn from a seeded normal, so that no path is zero or trivially
symmetric (the original SD code zero-initialises conv_out, proj_out and each resnet's conv2, and
default norms are exactly 1 and 0, which would hide a wrong path or a swapped scale and shift):
weights s·N(0,1) with s = min(0.2, 1/sqrt(fan-in)), biases 0.05·N(0,1), norm scales
1 + 0.1·N(0,1). The sample is 8×12
(non-square, so a transposed height/width shows) and the two samples carry different timesteps
(17 and 503, float, one per sample). The loss is the mean squared error against a random target,
as in epsilon-prediction training; `grad.x` is the gradient of that loss with respect to the input
sample. Everything is float32.

Usage: unet_grad.py OUT.safetensors"""
import sys

import diffusers
import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from safetensors.torch import save_file

# The config the candle side mirrors. `attention_head_dim` is diffusers' historical name for the
# number of heads when `num_attention_heads` is unset: 2 heads in every block (head width 16 at
# 32 channels, 32 at 64 channels).
CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64),
    layers_per_block=1,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    mid_block_type="UNetMidBlock2DCrossAttn",
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=2,
    num_attention_heads=None,
    cross_attention_dim=32,
    transformer_layers_per_block=1,
    use_linear_projection=False,
    norm_num_groups=8,
    norm_eps=1e-5,
    act_fn="silu",
    flip_sin_to_cos=True,
    freq_shift=0,
)


def tiny_unet():
    return UNet2DConditionModel(**CONFIG).float()


if __name__ == "__main__":
    out_path = sys.argv[1]
    torch.manual_seed(0)
    unet = tiny_unet().train()  # dropout is 0.0: train and eval modes compute the same thing
    norms = (torch.nn.GroupNorm, torch.nn.LayerNorm)
    with torch.no_grad():
        for mname, module in unet.named_modules():
            for pname, p in module.named_parameters(recurse=False):
                if isinstance(module, norms) and pname == "weight":
                    p.copy_(1.0 + 0.1 * torch.randn_like(p))
                elif p.dim() > 1:
                    # 0.2, capped at 1/sqrt(fan-in): a flat 0.2 grows the residual stream of the
                    # up blocks past 1000 (each wide conv multiplies it by ~5); capped, hidden
                    # states stay within ~10 and attention logits have a std of ~1 (softmax
                    # neither flat nor one-hot).
                    fan_in = p[0].numel()
                    p.copy_(min(0.2, fan_in**-0.5) * torch.randn_like(p))
                else:
                    p.copy_(0.05 * torch.randn_like(p))

    x = torch.randn(2, 4, 8, 12)
    t = torch.tensor([17.0, 503.0])
    ctx = torch.randn(2, 7, 32)
    target = torch.randn(2, 4, 8, 12)

    x_in = x.clone().requires_grad_()
    pred = unet(x_in, t, encoder_hidden_states=ctx).sample
    loss = F.mse_loss(pred, target)
    loss.backward()

    params = dict(unet.named_parameters())
    state = unet.state_dict()
    assert set(state) == set(params), "the UNet has buffers or tied weights: the fixture assumes neither"
    for name, p in params.items():
        assert p.grad is not None, f"no gradient reached {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient in {name}"
        # Every path matters: a parameter with an all-zero gradient would not be tested.
        assert p.grad.abs().max() > 0, f"zero gradient for {name}"
    assert torch.isfinite(pred).all() and torch.isfinite(x_in.grad).all()

    tensors = {f"unet.{k}": v.detach().float().contiguous() for k, v in state.items()}
    tensors.update({f"grad.{k}": p.grad.detach().float().contiguous() for k, p in params.items()})
    tensors.update(
        {
            "in.x": x.contiguous(),
            "in.t": t.contiguous(),
            "in.ctx": ctx.contiguous(),
            "in.target": target.contiguous(),
            "out.pred": pred.detach().contiguous(),
            "out.loss": loss.detach().reshape(1).contiguous(),
            "grad.x": x_in.grad.detach().contiguous(),
        }
    )
    save_file(
        tensors,
        out_path,
        # One metadata key: safetensors writes several in random order, and the file should be
        # byte-identical from run to run.
        metadata={"made_by": f"scripts/fixtures unet_grad (torch {torch.__version__}, diffusers {diffusers.__version__})"},
    )
    n = sum(p.numel() for p in params.values())
    print(
        "wrote", out_path,
        "loss", f"{loss.item():.6f}",
        "params", n, "tensors", len(params),
        "pred range", f"{pred.min().item():.3f}..{pred.max().item():.3f}",
        "|grad.x| max", f"{x_in.grad.abs().max().item():.3e}",
    )
