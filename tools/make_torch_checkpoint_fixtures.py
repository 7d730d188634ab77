"""Dev-only: regenerate tests/fixtures/torch_checkpoint/ (needs torch; never imported by hrm_mlx or the tests).

    python3 -m venv /work/venv-torch-c && /work/venv-torch-c/bin/pip install torch numpy
    /work/venv-torch-c/bin/python tools/make_torch_checkpoint_fixtures.py

For every checkpoint ``<name>.pt`` it writes ``<name>.expected.npz``: the tensors torch itself loads back, as
contiguous numpy arrays (bfloat16 as float32, the documented upcast), named as ``load_torch_checkpoint`` should
name them. ``expected_dtypes.json`` maps ``<name>`` -> tensor name -> torch dtype name.
Files differ byte-wise between runs (torch.save embeds a random serialization id); the values do not.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "torch_checkpoint"


def mixed_state_dict() -> dict[str, torch.Tensor]:
    """Every supported dtype plus the awkward layouts: views sharing a storage, offsets, strides, 0-d."""
    g = torch.Generator().manual_seed(0)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    special = torch.tensor([0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"), 1e-40, 3.0e38])
    param_with_attr = nn.Parameter(torch.randn(2, 2, generator=g))
    param_with_attr.note = "an attribute makes torch pickle this via _rebuild_parameter_with_state"
    return {
        "f32": torch.randn(3, 4, generator=g),
        "f64": torch.randn(3, generator=g, dtype=torch.float64),
        "f16": torch.randn(2, 3, generator=g).half(),
        "bf16": torch.randn(2, 5, generator=g).bfloat16(),
        "bf16_special": special.bfloat16(),
        "i64": torch.tensor([-(2**62), -1, 0, 1, 2**62 + 3]),
        "i32": torch.tensor([-(2**31), 7, 2**31 - 1], dtype=torch.int32),
        "i16": torch.tensor([-300, 300], dtype=torch.int16),
        "i8": torch.tensor([-128, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "u16": torch.tensor([0, 65535], dtype=torch.int32).to(torch.uint16),  # pickled via _rebuild_tensor_v3
        "bool": torch.tensor([[True, False], [False, True]]),
        "base": base,
        "base_t": base.t(),  # non-contiguous view of base's storage
        "base_slice": base[1:3, 2:5],  # storage offset 8, strides (6, 1)
        "base_strided": base[::2, ::3],  # strides (12, 3)
        "base_elem": base[2, 3],  # 0-d view at offset 15
        "broadcast": torch.arange(3.0).expand(4, 3),  # stride 0
        "scalar": torch.tensor(3.5),
        "scalar_i64": torch.tensor(42),
        "empty": torch.zeros(0, 3),
        "param": nn.Parameter(torch.randn(3, generator=g)),
        "param_with_attr": param_with_attr,
    }


class Inner(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 4)
        self.proj = nn.Linear(4, 3)
        self.norm = nn.LayerNorm(3)
        self.register_buffer("steps", torch.tensor([1, 2, 3]))


class Holder(nn.Module):
    """A chain of attributes so keys read like HRM's compiled checkpoints: ``_orig_mod.model.inner.<...>``."""

    def __init__(self, **children: nn.Module) -> None:
        super().__init__()
        for name, child in children.items():
            self.add_module(name, child)


def tiny_module() -> nn.Module:
    torch.manual_seed(0)
    inner = Inner()
    inner.embed.to(torch.bfloat16)
    return Holder(_orig_mod=Holder(model=Holder(inner=inner)))


def expected(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    arrays, dtypes = {}, {}
    for name, t in tensors.items():
        t = t.detach()
        dtypes[name] = str(t.dtype).removeprefix("torch.")
        arrays[name] = (t.float() if t.dtype == torch.bfloat16 else t).contiguous().numpy().copy()
    return arrays, dtypes


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    all_dtypes: dict[str, dict[str, str]] = {}

    def write(name: str, obj, tensors: dict[str, torch.Tensor], **save_kwargs) -> None:
        torch.save(obj, OUT / f"{name}.pt", **save_kwargs)
        arrays, dtypes = expected(tensors)
        np.savez(OUT / f"{name}.expected.npz", **arrays)
        all_dtypes[name] = dtypes

    mixed = mixed_state_dict()
    write("mixed", mixed, mixed)

    module = tiny_module()
    params = module.state_dict(keep_vars=True)  # OrderedDict (with _metadata) of nn.Parameters and a buffer
    assert isinstance(params, OrderedDict) and isinstance(params["_orig_mod.model.inner.proj.weight"], nn.Parameter)
    write("module_params", params, params)

    # A training checkpoint: the loader must pick "model" and ignore optimizer state and scalars.
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    module._orig_mod.model.inner.proj.weight.sum().backward()
    optimizer.step()
    plain = module.state_dict()
    wrapped = {"model": plain, "optimizer": optimizer.state_dict(), "epoch": 3, "config": {"lr": 1e-3}}
    write("wrapped", wrapped, plain)

    legacy_keys = ["f32", "bf16", "i64", "bool", "base", "base_t", "base_slice", "scalar", "param"]
    legacy = {key: mixed[key] for key in legacy_keys}
    write("legacy", legacy, legacy, _use_new_zipfile_serialization=False)

    # Unsupported dtype: the loader must say so clearly (no expected values needed).
    torch.save({"w": torch.zeros(2).to(torch.float8_e4m3fn)}, OUT / "float8.pt")

    (OUT / "expected_dtypes.json").write_text(json.dumps(all_dtypes, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1024:.1f} KiB, to {OUT}")


if __name__ == "__main__":
    main()
