"""Original Stable Diffusion (ldm, A1111/Civitai single-file) names of diffusers parameters, for
SD 1.x/2.x checkpoints. Fixture scripts write single files with these names and then check that
diffusers' own single-file converters read every one back to the same diffusers name and tensor,
so the names are the ones real files use."""

RESNET = [
    ("norm1.", "in_layers.0."),
    ("conv1.", "in_layers.2."),
    ("time_emb_proj.", "emb_layers.1."),
    ("norm2.", "out_layers.0."),
    ("conv2.", "out_layers.3."),
    ("conv_shortcut.", "skip_connection."),
]


def _resnet(tail):
    for d, l in RESNET:
        if tail.startswith(d):
            return l + tail[len(d):]
    raise KeyError(tail)


def unet(name, lpb, attention):
    """`model.diffusion_model.…` of a UNet2DConditionModel parameter; `attention[i]`: whether
    down level i has cross-attention (the up levels mirror it)."""
    simple = {
        "time_embedding.linear_1.": "time_embed.0.",
        "time_embedding.linear_2.": "time_embed.2.",
        "conv_in.": "input_blocks.0.0.",
        "conv_norm_out.": "out.0.",
        "conv_out.": "out.2.",
        "mid_block.attentions.0.": "middle_block.1.",
    }
    for d, l in simple.items():
        if name.startswith(d):
            return l + name[len(d):]
    p = name.split(".")
    if p[0] == "mid_block" and p[1] == "resnets":
        return f"middle_block.{2 * int(p[2])}." + _resnet(".".join(p[3:]))
    if p[0] == "down_blocks":
        i = int(p[1])
        if p[2] == "resnets":
            return f"input_blocks.{1 + i * (lpb + 1) + int(p[3])}.0." + _resnet(".".join(p[4:]))
        if p[2] == "attentions":
            return f"input_blocks.{1 + i * (lpb + 1) + int(p[3])}.1." + ".".join(p[4:])
        if p[2] == "downsamplers":
            return f"input_blocks.{(i + 1) * (lpb + 1)}.0.op." + ".".join(p[5:])
    if p[0] == "up_blocks":
        i = int(p[1])
        if p[2] == "resnets":
            return f"output_blocks.{i * (lpb + 1) + int(p[3])}.0." + _resnet(".".join(p[4:]))
        if p[2] == "attentions":
            return f"output_blocks.{i * (lpb + 1) + int(p[3])}.1." + ".".join(p[4:])
        if p[2] == "upsamplers":
            levels = len(attention)
            has_attn = attention[levels - 1 - i]
            return f"output_blocks.{i * (lpb + 1) + lpb}.{2 if has_attn else 1}.conv." + ".".join(p[5:])
    raise KeyError(name)


VAE_RESNET = [("conv_shortcut.", "nin_shortcut.")]
VAE_ATTN = [
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
]


def vae(name, levels):
    """`first_stage_model.…` of an AutoencoderKL parameter (attention projections become 1×1
    convolutions: the caller reshapes them)."""
    for same in ("quant_conv.", "post_quant_conv."):
        if name.startswith(same):
            return name
    p = name.split(".")
    side = p[0]  # encoder | decoder
    rest = p[1:]
    head = {"conv_in": "conv_in", "conv_out": "conv_out", "conv_norm_out": "norm_out"}
    if rest[0] in head:
        return f"{side}.{head[rest[0]]}." + ".".join(rest[1:])

    def res(tail):
        for d, l in VAE_RESNET:
            if tail.startswith(d):
                return l + tail[len(d):]
        return tail

    if rest[0] == "mid_block":
        if rest[1] == "resnets":
            return f"{side}.mid.block_{int(rest[2]) + 1}." + res(".".join(rest[3:]))
        tail = ".".join(rest[3:])
        for d, l in VAE_ATTN:
            if tail.startswith(d):
                return f"{side}.mid.attn_1." + l + tail[len(d):]
    if rest[0] == "down_blocks":
        i = int(rest[1])
        if rest[2] == "resnets":
            return f"{side}.down.{i}.block.{rest[3]}." + res(".".join(rest[4:]))
        if rest[2] == "downsamplers":
            return f"{side}.down.{i}.downsample.conv." + ".".join(rest[5:])
    if rest[0] == "up_blocks":
        i = levels - 1 - int(rest[1])
        if rest[2] == "resnets":
            return f"{side}.up.{i}.block.{rest[3]}." + res(".".join(rest[4:]))
        if rest[2] == "upsamplers":
            return f"{side}.up.{i}.upsample.conv." + ".".join(rest[5:])
    raise KeyError(name)
