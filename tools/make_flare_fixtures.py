"""Generate FLARE parity fixtures from the official PyTorch implementation (dev-only tool).

This script is NOT part of the hrm_mlx package and never imports it. It needs PyTorch (CPU), numpy, safetensors
and einops, plus a checkout of the official code (github.com/vpuri3/FLARE.py, commit 4e05378), whose module
files are loaded from the path given with --official and never copied into this repository:

    /work/venv-torch-flare/bin/python tools/make_flare_fixtures.py --official /tmp/flare_official \
        --out tests/fixtures/flare

Two official modules are used:
    pdebench/models/flare.py   FLARE, FLAREBlock, FLAREModel (the PDE-surrogate code; no mask argument)
    lra/models/backends.py     FLARE with ``attention_mask`` (the Long-Range-Arena copy of the layer; same
                               parameters and key names). Loaded as a module of a stand-in package so that its
                               relative import (.kernels) resolves without running lra/models/__init__.py.

Everything runs on CPU in float32 under torch.no_grad. All randomness is seeded; re-running reproduces the files.

Fixture format
==============

``<out>/cases.json``: {"official_commit", "torch", "cases": {<case>: {"source", "class", "kwargs", "seed",
"x_shape", "lengths" (masked case only)}}}. ``kwargs`` are the official constructor arguments exactly as passed.

``<out>/<case>.safetensors`` (float32 unless stated):
    x                 [B, N, in]      the input (for layers and blocks in = C)
    y                 [B, N, out]     the official forward output (FLARE/FLAREBlock return (y, scores): y only)
    mask              uint8 [B, N]    masked case only: 1 = real token (the LRA attention_mask), the first
                                      lengths[b] tokens of row b are real
    state.<name>      the module's state dict, official key names (e.g. state.latent_q [C, M],
                      state.k_proj.fcs.0.weight, state.blocks.1.att.out_proj.bias, state.out_proj.0.weight)

Weights. The official inits make a weak test (FLAREModel draws every Linear from N(0, 0.02^2) and the standalone
classes keep torch's defaults, with LayerNorm at 1/0 and latent_q at N(0, 0.1^2), so the softmaxes are close to
uniform), so after construction every parameter is redrawn: Linear weights and biases U(-1/sqrt(fan_in),
1/sqrt(fan_in)) (torch's default), latent_q N(0, 0.5^2), norm weights 1 + N(0, 0.2^2), norm biases N(0, 0.2^2).
Inputs x ~ N(0, 1).

Cases (C = 32 channels, H = 4 heads (D = 8), M = 8 latents per head, B = 2 or 3, N = 40 tokens):
    layer          pdebench FLARE(32, num_heads=4, num_latents=8): the defaults (attn_scale 1, GELU-tanh,
                   3-hidden-layer K/V MLPs of ratio 1)
    layer_variant  pdebench FLARE with attn_scale = D^-0.5 (the CLI's 'sqrt'), act 'silu', qk_norm with RMSNorm,
                   num_layers_k_proj 1 with k_proj_mlp_ratio 2 (no identity paths), num_layers_v_proj 0
    layer_masked   lra FLARE(32, num_heads=4, num_latents=8, kv_proj_hidden_dim=32) with attention_mask,
                   B = 3, lengths (40, 23, 7); torch 2.13 returns 0 for the fully masked decode rows of padded
                   tokens, so their outputs are out_proj.bias
    block          pdebench FLAREBlock(32, num_heads=4, num_latents=8): LayerNorm, pre-norm, ratio-1 FFN
    block_rms      pdebench FLAREBlock with rmsnorm, num_layers_ffn 1, ffn_mlp_ratio 2
    model          pdebench FLAREModel(in_dim=3, out_dim=2, channel_dim=32, num_blocks=2, num_heads=4,
                   num_latents=8): in_proj, 2 blocks, out_proj (LayerNorm + residual MLP)
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import save_file

OFFICIAL_COMMIT = "4e05378"
C, H, M, N = 32, 4, 8, 40


def load_official(official: Path):
    spec = importlib.util.spec_from_file_location("flare_pdebench", official / "pdebench" / "models" / "flare.py")
    pde = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pde)
    package = types.ModuleType("flare_lra_models")  # stand-in package: skip lra/models/__init__.py
    package.__path__ = [str(official / "lra" / "models")]
    sys.modules["flare_lra_models"] = package
    lra = importlib.import_module("flare_lra_models.backends")
    return pde, lra


def redraw(module: torch.nn.Module, gen: torch.Generator) -> None:
    """Replace every parameter with non-trivial random values (see the module docstring)."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, torch.nn.Linear):
                bound = 1 / math.sqrt(sub.in_features)
                sub.weight.copy_((torch.rand(sub.weight.shape, generator=gen) * 2 - 1) * bound)
                sub.bias.copy_((torch.rand(sub.bias.shape, generator=gen) * 2 - 1) * bound)
            elif isinstance(sub, (torch.nn.LayerNorm, torch.nn.RMSNorm)):
                sub.weight.copy_(1 + 0.2 * torch.randn(sub.weight.shape, generator=gen))
                if getattr(sub, "bias", None) is not None:
                    sub.bias.copy_(0.2 * torch.randn(sub.bias.shape, generator=gen))
        for name, p in module.named_parameters():
            if name.endswith("latent_q"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))


def cases(pde, lra) -> dict:
    D = C // H
    return {
        "layer": dict(source="pdebench/models/flare.py", cls=pde.FLARE, kwargs=dict(channel_dim=C, num_heads=H,
                      num_latents=M), batch=2, in_dim=C, seed=101),
        "layer_variant": dict(source="pdebench/models/flare.py", cls=pde.FLARE,
                              kwargs=dict(channel_dim=C, num_heads=H, num_latents=M, attn_scale=D**-0.5, act="silu",
                                          num_layers_k_proj=1, num_layers_v_proj=0, k_proj_mlp_ratio=2.0,
                                          qk_norm=True, rmsnorm=True), batch=2, in_dim=C, seed=102),
        "layer_masked": dict(source="lra/models/backends.py", cls=lra.FLARE,
                             kwargs=dict(channel_dim=C, num_heads=H, num_latents=M, kv_proj_hidden_dim=C), batch=3,
                             in_dim=C, seed=103, lengths=(N, 23, 7)),
        "block": dict(source="pdebench/models/flare.py", cls=pde.FLAREBlock,
                      kwargs=dict(channel_dim=C, num_heads=H, num_latents=M), batch=2, in_dim=C, seed=104),
        "block_rms": dict(source="pdebench/models/flare.py", cls=pde.FLAREBlock,
                          kwargs=dict(channel_dim=C, num_heads=H, num_latents=M, rmsnorm=True, num_layers_ffn=1,
                                      ffn_mlp_ratio=2.0), batch=2, in_dim=C, seed=105),
        "model": dict(source="pdebench/models/flare.py", cls=pde.FLAREModel,
                      kwargs=dict(in_dim=3, out_dim=2, channel_dim=C, num_blocks=2, num_heads=H, num_latents=M),
                      batch=2, in_dim=3, seed=106),
    }


def make_case(spec: dict) -> tuple[dict, dict]:
    torch.manual_seed(spec["seed"])
    gen = torch.Generator().manual_seed(spec["seed"])
    module = spec["cls"](**spec["kwargs"]).eval()
    redraw(module, gen)
    x = torch.randn(spec["batch"], N, spec["in_dim"], generator=gen)
    tensors = {"x": x}
    with torch.no_grad():
        if "lengths" in spec:
            mask = torch.arange(N)[None, :] < torch.tensor(spec["lengths"])[:, None]
            y = module(x, attention_mask=mask)
            tensors["mask"] = mask.to(torch.uint8)
        else:
            y = module(x)
    y = y[0] if isinstance(y, tuple) else y
    assert torch.isfinite(y).all()
    tensors["y"] = y
    tensors.update({f"state.{k}": v for k, v in module.state_dict().items()})
    meta = dict(source=spec["source"], **{"class": spec["cls"].__name__}, kwargs=spec["kwargs"], seed=spec["seed"],
                x_shape=list(x.shape))
    if "lengths" in spec:
        meta["lengths"] = list(spec["lengths"])
    return meta, {k: v.detach().contiguous() for k, v in tensors.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of vpuri3/FLARE.py")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/flare"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    pde, lra = load_official(args.official)
    args.out.mkdir(parents=True, exist_ok=True)
    index = {"official_commit": OFFICIAL_COMMIT, "torch": torch.__version__, "cases": {}}
    for name, spec in cases(pde, lra).items():
        meta, tensors = make_case(spec)
        save_file(tensors, str(args.out / f"{name}.safetensors"))
        index["cases"][name] = meta
        y = tensors["y"]
        print(f"{name:14s} x {tuple(tensors['x'].shape)} -> y {tuple(y.shape)}  |y| max {y.abs().max():.3f} "
              f"std {y.std():.3f}")
    (args.out / "cases.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main()
