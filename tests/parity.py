"""Parity with the official PyTorch code, shared by the model families' parity tests.

Fixtures live in ``tests/fixtures/<family>/<case>/`` and are generated from the official code by
``tools/make_<family>_fixtures.py`` (the format is documented there): config.json, weights.safetensors (official
names), eval.npz (an eval rollout to halting), train.npz (a training rollout with halting and exploration) and
grads.safetensors (the gradients of some training steps).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from hrm_mlx.models import FAMILIES, act

ROOT = Path(__file__).parent / "fixtures"
TOL = dict(rtol=1e-4, atol=1e-4)


class Fixtures:
    """The fixtures of one family. A model built here knows its case (``model.case``) and fixtures
    (``model.fixtures``); set ``model.compiled`` to step it through ``mx.compile``."""

    def __init__(self, family: str, cases: tuple[str, ...]):
        self.family = family
        self.module = FAMILIES[family]
        self.root = ROOT / family
        self.cases = cases

    def config(self, case: str) -> dict:
        return json.loads((self.root / case / "config.json").read_text())

    def build_model(self, case: str, model_class=None):
        model_class = model_class or self.module.Model
        model = model_class(self.module.ModelArgs.from_dict(self.config(case)))
        weights = model_class.sanitize(mx.load(str(self.root / case / "weights.safetensors")))
        model.load_weights(list(weights.items()), strict=True)
        model.case, model.fixtures, model.compiled = case, self, False
        return model

    def rollout(self, case: str, kind: str) -> dict:
        return dict(np.load(self.root / case / f"{kind}.npz"))

    def grads(self, case: str) -> dict:
        return mx.load(str(self.root / case / "grads.safetensors"))


def close(ours, theirs, what):
    np.testing.assert_allclose(np.array(ours, dtype=np.float64), theirs, **TOL, err_msg=what)


def eval_rollout(model, teacher_forced: bool = False):
    """Steps through the official eval rollout: yields (t, ref, carry, outputs, loss, metrics) after step t.
    ``teacher_forced``: start every step from the official carry state (as train_rollout does), for models whose
    recursion amplifies float32 rounding too much for a free run to stay within the tolerance."""
    ref = model.fixtures.rollout(model.case, "eval")
    batch = {k: mx.array(ref[k]) for k in act.DATA_KEYS}
    step = act.make_eval_step(model, compiled=model.compiled)
    carry = act.initial_carry(model, batch)
    for t in range(ref["loss"].shape[0]):
        carry, out, loss, metrics = step(carry, batch)
        yield t, ref, carry, out, loss, metrics
        if teacher_forced:
            carry = {**carry, "state": (mx.array(ref["z_H"][t]), mx.array(ref["z_L"][t]))}


def check_step(t, ref, carry, out, loss, metrics):
    close(carry["state"][0], ref["z_H"][t], f"z_H step {t}")
    close(carry["state"][1], ref["z_L"][t], f"z_L step {t}")
    close(out["logits"], ref["logits"][t], f"logits step {t}")
    close(out["q_halt_logits"], ref["q_halt_logits"][t], f"q_halt step {t}")
    close(out["q_continue_logits"], ref["q_continue_logits"][t], f"q_continue step {t}")
    np.testing.assert_array_equal(np.array(carry["halted"]), ref["halted"][t], f"halted step {t}")
    np.testing.assert_array_equal(np.array(carry["steps"]), ref["steps"][t], f"steps step {t}")
    close(loss, ref["loss"][t], f"loss step {t}")
    assert set(metrics) == {k.removeprefix("metric_") for k in ref if k.startswith("metric_")}, sorted(metrics)
    for name, value in metrics.items():
        close(value, ref[f"metric_{name}"][t], f"metric {name} step {t}")


def train_rollout(model):
    """Steps through the official training rollout: yields (t, ref, carry, puzzle rows, min_halt_steps) before
    step t, on a carry whose halted rows were reset. The next step starts from the official carry state, so
    each step is compared on its own: over several steps float32 rounding differences grow by a few times per
    step (the recursion amplifies them; a float64 run of ours drifts from the fixture just the same)."""
    ref = model.fixtures.rollout(model.case, "train")
    carry = act.initial_carry(model, {k: mx.array(ref[f"batch_{k}"][0]) for k in act.DATA_KEYS})
    for t in range(ref["loss"].shape[0]):
        batch = {k: mx.array(ref[f"batch_{k}"][t]) for k in act.DATA_KEYS}
        carry = act.reset_halted(model, carry, batch)
        for k in act.DATA_KEYS:
            np.testing.assert_array_equal(np.array(carry[k]), ref[f"current_{k}"][t], f"{k} step {t}")
        rows = model.puzzle_rows(carry["puzzle_identifiers"])
        min_halt_steps = mx.array(ref["min_halt_steps"][t])
        yield t, ref, carry, rows, min_halt_steps
        _, (carry, _, _) = act.training_loss(model, carry, rows, min_halt_steps)
        carry["state"] = (mx.array(ref["z_H"][t]), mx.array(ref["z_L"][t]))


def check_training_rollout(model):
    for t, ref, carry, rows, min_halt_steps in train_rollout(model):
        loss, (new_carry, out, metrics) = act.training_loss(model, carry, rows, min_halt_steps)
        check_step(t, ref, new_carry, out, loss, metrics)
        if "target_q_continue" in ref:
            close(out["target_q_continue"], ref["target_q_continue"][t], f"target_q_continue step {t}")
        else:
            assert "target_q_continue" not in out, "the official model has no Q-continue target here"
    assert np.any(ref["halted"] != ref["halted"][:, :1]), "fixture should halt rows at different steps"


def check_gradients(model):
    """Gradients of the stored training steps' losses: every trainable parameter and the puzzle rows."""
    official = model.fixtures.grads(model.case)
    grad_fn = mx.grad(lambda params, rows, carry, mh: _loss(model, params, rows, carry, mh), argnums=(0, 1))
    ref_steps = set(model.fixtures.rollout(model.case, "train")["grad_steps"].tolist())
    checked = 0
    for t, ref, carry, rows, min_halt_steps in train_rollout(model):
        if t not in ref_steps:
            continue
        param_grads, row_grads = grad_fn(model.trainable_parameters(), rows, carry, min_halt_steps)
        theirs = model.sanitize({k.split(".", 1)[1]: v for k, v in official.items() if k.startswith(f"step{t}.")
                                 and not k.endswith("local_weights")})
        ours = dict(tree_flatten(param_grads))
        assert ours.keys() == theirs.keys()
        for name, g in ours.items():
            close(g, np.array(theirs[name]), f"grad {name} step {t}")
        close(row_grads, np.array(official[f"step{t}.puzzle_emb.local_weights"]), f"puzzle-row grad step {t}")
        checked += 1
    assert checked == len(ref_steps)


def _loss(model, params, rows, carry, min_halt_steps):
    model.update(params)
    return act.training_loss(model, carry, rows, min_halt_steps)[0]
