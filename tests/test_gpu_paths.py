"""The paths only a GPU takes by default, forced on the CPU (layers.fused_kernels) and checked against the explicit
math the CPU runs: MLX's fused attention kernel inside whole models (official attention, the grid-masked mixer) and
FLARE's fused encode/decode, in their outputs over ACT steps and in a training gradient."""

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from hrm_mlx.models import act, build, layers

BASE = {"seq_len": 16, "vocab_size": 6, "num_puzzle_identifiers": 2, "H_cycles": 1, "L_cycles": 2, "H_layers": 1,
        "L_layers": 1, "hidden_size": 32, "expansion": 2, "num_heads": 4, "pos_encodings": "rope",
        "halt_max_steps": 3, "halt_exploration_prob": 0.0, "puzzle_emb_ndim": 32, "forward_dtype": "float32"}
CASES = {"official attention": {"family": "hrm"},
         "grid mask": {"family": "trm", "H_layers": 0, "mixer": "grid_mask", "puzzle_emb_len": 1},
         "flare": {"family": "trm", "H_layers": 0, "mixer": "flare", "mixer_args": {"num_latents": 4}}}


def run(model, batch, fused: bool, monkeypatch) -> tuple[list, dict, int]:
    """Logits of 3 ACT steps, the gradient of one training step, and how often the fused kernel ran."""
    calls = []
    kernel = mx.fast.scaled_dot_product_attention
    monkeypatch.setattr(mx.fast, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or kernel(*a, **k))
    with layers.fused_kernels(fused):
        step = act.make_eval_step(model, compiled=False)
        carry, logits = act.initial_carry(model, batch), []
        for _ in range(3):
            carry, outputs, _, _ = step(carry, batch)
            logits.append(np.array(outputs["logits"]))
        start = act.reset_halted(model, act.initial_carry(model, batch), batch)
        rows = model.puzzle_rows(start["puzzle_identifiers"])

        def loss(params):
            model.update(params)
            return act.training_loss(model, start, rows, mx.zeros((batch["inputs"].shape[0],), dtype=mx.int32))[0]

        grads = {k: np.array(v) for k, v in tree_flatten(mx.grad(loss)(model.trainable_parameters()))}
    monkeypatch.undo()
    return logits, grads, len(calls)


@pytest.mark.parametrize("case", CASES)
def test_the_fused_kernels_give_what_the_cpu_computes(case, monkeypatch):
    mx.random.seed(0)
    model = build({**BASE, **CASES[case]})
    batch = {"inputs": mx.random.randint(1, 6, (3, 16), key=mx.random.key(1)),
             "labels": mx.random.randint(1, 6, (3, 16), key=mx.random.key(2)),
             "puzzle_identifiers": mx.array([0, 1, 1], dtype=mx.int32)}
    explicit_logits, explicit_grads, explicit_calls = run(model, batch, False, monkeypatch)
    fused_logits, fused_grads, fused_calls = run(model, batch, True, monkeypatch)
    assert explicit_calls == 0 and fused_calls > 0  # each path was really taken
    for t, (ours, theirs) in enumerate(zip(fused_logits, explicit_logits)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5, err_msg=f"logits of step {t + 1}")
    assert fused_grads.keys() == explicit_grads.keys()
    for key in explicit_grads:
        np.testing.assert_allclose(fused_grads[key], explicit_grads[key], rtol=1e-3, atol=1e-5, err_msg=key)
    assert layers.fused_attention_is_faster() == (mx.default_device() == mx.gpu)  # the switch is released
