"""Access to the parity fixtures generated from the official HRM code by tools/make_hrm_fixtures.py."""

import json
from pathlib import Path

import mlx.core as mx
import numpy as np

from hrm_mlx.models import hrm

FIXTURES = Path(__file__).parent / "fixtures" / "hrm"
CASES = ("rope", "learned")


def config(case: str) -> dict:
    return json.loads((FIXTURES / case / "config.json").read_text())


def build_model(case: str, model_class=hrm.Model) -> hrm.Model:
    model = model_class(hrm.ModelArgs.from_dict(config(case)))
    weights = hrm.Model.sanitize(mx.load(str(FIXTURES / case / "weights.safetensors")))
    model.load_weights(list(weights.items()), strict=True)
    return model


def rollout(case: str, kind: str) -> dict:
    return dict(np.load(FIXTURES / case / f"{kind}.npz"))


def grads(case: str) -> dict:
    return mx.load(str(FIXTURES / case / "grads.safetensors"))
