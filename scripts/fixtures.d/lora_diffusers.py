"""Proof that a kohya-format LoRA written by our trainer loads in diffusers and does what it says.

Mintframe writes LoRAs in the kohya/sd-scripts layout that A1111, ComfyUI and diffusers read:
`lora_unet_<diffusers module path with "." as "_">.{lora_down.weight, lora_up.weight, alpha}`,
down (rank, in) and up (out, rank) for linears, down (rank, c_in, k, k) and up (c_out, rank, 1, 1)
for convolutions (LoCon; a 1×1 conv such as `proj_in` with `use_linear_projection=False` is a
convolution too). This script loads such a file the way a user would, `StableDiffusionPipeline
.load_lora_weights`, onto the tiny UNet of the `unet_grad` fixture (its `unet.*` weights, strict),
and fails loudly unless diffusers took every module of the file: the kohya modules in the file
must be exactly the modules peft injected (by name, not just by count), each with the file's up
and down weights and a scale of alpha/rank, and diffusers and peft must say nothing (a warning
about unexpected, missing or unused keys, or any other, is an error here). Then it checks the
LoRA's effect against the math, independently of diffusers and peft: W + (alpha/rank)·up·down
merged by hand into a copy of the base UNet must give the same output.

The rest of the pipeline is tiny and random (a one-level AutoencoderKL, a 2-layer CLIP text model
of width 32, a DDIM scheduler, no tokenizer, no safety checker): `load_lora_weights` needs a
pipeline object but none of its weights. Everything is offline (HF_HUB_OFFLINE=1) and reads
safetensors only (`use_safetensors=True`: no fallback to a pickle).

Writes `out.pred_base` (the UNet without the LoRA) and `out.pred_lora` (with it, scale 1.0) for
the `in.x`, `in.t`, `in.ctx` inputs of the `unet_grad` fixture.

Usage: lora_diffusers.py UNET_GRAD_FIXTURE LORA_FILE OUT.safetensors"""
import copy
import logging
import os
import sys
import warnings

os.environ["HF_HUB_OFFLINE"] = "1"

import diffusers  # noqa: E402
import torch  # noqa: E402
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline  # noqa: E402
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel  # noqa: E402

sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unet_grad import tiny_unet  # noqa: E402  (the one definition of the tiny UNet's config)

fixture_path, lora_path, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
torch.manual_seed(0)


def fail(msg):
    sys.exit(f"lora_diffusers: FAILED: {msg}")


# --- The file, read directly: which modules it claims, with which weights and scale. ---
lora = load_file(lora_path)
SUFFIXES = (".lora_down.weight", ".lora_up.weight", ".alpha")
modules = sorted({k[: -len(".lora_down.weight")] for k in lora if k.endswith(".lora_down.weight")})
for k in lora:
    if not k.endswith(SUFFIXES):
        fail(f"key {k} is not a kohya LoRA key (.lora_down.weight, .lora_up.weight, .alpha)")
    prefix = k[: -len(next(s for s in SUFFIXES if k.endswith(s)))]
    if prefix not in modules:
        fail(f"key {k} has no matching .lora_down.weight")
    if not prefix.startswith("lora_unet_"):
        fail(f"key {k}: this check covers UNet LoRAs only (lora_unet_*)")
for m in modules:
    if f"{m}.lora_up.weight" not in lora:
        fail(f"{m} has lora_down but no lora_up")
if not modules:
    fail(f"no kohya modules in {lora_path}")

# --- The base UNet, exactly the unet_grad fixture's. ---
fixture = load_file(fixture_path)
unet = tiny_unet()
unet.load_state_dict({k[len("unet."):]: v for k, v in fixture.items() if k.startswith("unet.")}, strict=True)
unet.eval()
x, t, ctx = fixture["in.x"], fixture["in.t"], fixture["in.ctx"]

# kohya name -> module path, from the UNet itself (not from diffusers' converter).
by_kohya = {}
for name, _ in unet.named_modules():
    if name:
        k = "lora_unet_" + name.replace(".", "_")
        if k in by_kohya:
            fail(f"kohya name {k} is ambiguous: {by_kohya[k]} and {name}")
        by_kohya[k] = name
unknown = [m for m in modules if m not in by_kohya]
if unknown:
    fail(f"the file names modules the UNet does not have: {unknown}")

with torch.no_grad():
    pred_base = unet(x, t, encoder_hidden_states=ctx).sample

# The independent reference: W + (alpha/rank)·up·down merged by hand into a copy.
merged = copy.deepcopy(unet)
with torch.no_grad():
    for m in modules:
        layer = merged.get_submodule(by_kohya[m])
        down, up = lora[f"{m}.lora_down.weight"].float(), lora[f"{m}.lora_up.weight"].float()
        rank = down.shape[0]
        alpha = float(lora[f"{m}.alpha"]) if f"{m}.alpha" in lora else float(rank)  # kohya: no alpha = rank
        w = layer.weight
        if isinstance(layer, torch.nn.Linear):
            if down.dim() != 2 or up.dim() != 2:
                fail(f"{m}: a Linear wants 2-D down/up, got {tuple(down.shape)} / {tuple(up.shape)}")
            delta = up @ down
        elif isinstance(layer, torch.nn.Conv2d):
            if down.dim() != 4 or up.dim() != 4 or up.shape[2:] != (1, 1):
                fail(f"{m}: a Conv2d wants down (r,c_in,k,k) and up (c_out,r,1,1), got {tuple(down.shape)} / {tuple(up.shape)}")
            delta = torch.einsum("or,rikl->oikl", up[:, :, 0, 0], down)
        else:
            fail(f"{m}: LoRA on a {type(layer).__name__} is not checked here")
        if delta.shape != w.shape:
            fail(f"{m}: up·down is {tuple(delta.shape)}, the weight is {tuple(w.shape)}")
        w.add_(delta * (alpha / rank))
    pred_merged = merged(x, t, encoder_hidden_states=ctx).sample

# --- The pipeline a user would have, and the user's call. ---
vae = AutoencoderKL(
    in_channels=3,
    out_channels=3,
    down_block_types=("DownEncoderBlock2D",),
    up_block_types=("UpDecoderBlock2D",),
    block_out_channels=(8,),
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=16,
)
text_encoder = CLIPTextModel(
    CLIPTextConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=49408,
        max_position_embeddings=77,
    )
)
pipe = StableDiffusionPipeline(
    vae=vae,
    text_encoder=text_encoder,
    tokenizer=None,
    unet=unet,
    scheduler=DDIMScheduler(  # SD1's schedule; never stepped here
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, set_alpha_to_one=False, steps_offset=1,
    ),
    safety_checker=None,
    feature_extractor=None,
    requires_safety_checker=False,
)


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record.getMessage())


collect = Collect()
loggers = [logging.getLogger(n) for n in ("diffusers", "peft", "transformers")]
for lg in loggers:
    lg.addHandler(collect)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pipe.load_lora_weights(lora_path, weight_name=os.path.basename(lora_path), use_safetensors=True, adapter_name="ours")
for lg in loggers:
    lg.removeHandler(collect)
said = collect.records + [f"{w.category.__name__}: {w.message}" for w in caught]
if said:
    fail("diffusers/peft complained while loading the LoRA:\n  " + "\n  ".join(said))

# --- Every module of the file, and nothing else, became a peft LoRA layer with the file's numbers. ---
injected = {}
for name, module in pipe.unet.named_modules():
    if hasattr(module, "lora_A") and "ours" in module.lora_A:
        injected["lora_unet_" + name.replace(".", "_")] = module
te_injected = [n for n, m in pipe.text_encoder.named_modules() if hasattr(m, "lora_A") and len(m.lora_A)]
if te_injected:
    fail(f"LoRA layers appeared in the text encoder: {te_injected}")
missing = sorted(set(modules) - set(injected))
extra = sorted(set(injected) - set(modules))
print(f"kohya modules in the file: {len(modules)}; peft LoRA layers in the UNet: {len(injected)}")
if missing or extra or len(injected) != len(modules):
    fail(f"file and UNet disagree: not applied {missing}; applied but not in the file {extra}")
with torch.no_grad():
    for m in modules:
        layer = injected[m]
        down, up = lora[f"{m}.lora_down.weight"].float(), lora[f"{m}.lora_up.weight"].float()
        rank = down.shape[0]
        alpha = float(lora[f"{m}.alpha"]) if f"{m}.alpha" in lora else float(rank)
        a, b = layer.lora_A["ours"].weight, layer.lora_B["ours"].weight
        if a.shape != down.shape or not torch.equal(a.float(), down):
            fail(f"{m}: peft lora_A {tuple(a.shape)} is not the file's lora_down {tuple(down.shape)}")
        if b.shape != up.shape or not torch.equal(b.float(), up):
            fail(f"{m}: peft lora_B {tuple(b.shape)} is not the file's lora_up {tuple(up.shape)}")
        if layer.r["ours"] != rank or abs(layer.scaling["ours"] - alpha / rank) > 1e-7:
            fail(f"{m}: peft rank {layer.r['ours']} scale {layer.scaling['ours']}, the file says rank {rank} scale {alpha / rank}")

with torch.no_grad():
    pred_lora = pipe.unet(x, t, encoder_hidden_states=ctx).sample
    pipe.disable_lora()
    pred_off = pipe.unet(x, t, encoder_hidden_states=ctx).sample
    pipe.enable_lora()

effect = (pred_lora - pred_base).abs().max().item()
vs_merged = (pred_lora - pred_merged).abs().max().item()
off = (pred_off - pred_base).abs().max().item()
print(f"LoRA effect max |lora - base| {effect:.4e}; max |lora - hand-merged| {vs_merged:.3e}; adapters off vs base {off:.3e}")
if off != 0.0:
    fail("with the adapter disabled the UNet no longer matches the base")
if effect == 0.0:
    fail("the LoRA does not change the output (a zero lora_up?): nothing was tested")
if vs_merged > 1e-5 * max(1.0, pred_base.abs().max().item()):
    fail(f"diffusers' LoRA output differs from W + (alpha/rank)·up·down by {vs_merged:.3e}")

save_file(
    {"out.pred_base": pred_base.contiguous(), "out.pred_lora": pred_lora.contiguous()},
    out_path,
    metadata={"made_by": f"scripts/fixtures lora_diffusers (torch {torch.__version__}, diffusers {diffusers.__version__})"},
)
print("wrote", out_path)
