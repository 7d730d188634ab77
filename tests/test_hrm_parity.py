"""Our HRM against the official PyTorch code, number for number (fixtures: tools/make_hrm_fixtures.py)."""

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

import hrm_fixtures as fx
from hrm_mlx.models import act, hrm, layers

TOL = dict(rtol=1e-4, atol=1e-4)


def close(ours, theirs, what):
    np.testing.assert_allclose(np.array(ours, dtype=np.float64), theirs, **TOL, err_msg=what)


def eval_rollout(model):
    ref = fx.rollout(model.case, "eval")
    batch = {k: mx.array(ref[k]) for k in act.DATA_KEYS}
    step = act.make_eval_step(model, compiled=model.compiled)
    carry = act.initial_carry(model, batch)
    for t in range(ref["loss"].shape[0]):
        carry, out, loss, metrics = step(carry, batch)
        yield t, ref, carry, out, loss, metrics


@pytest.fixture(params=[(c, comp) for c in fx.CASES for comp in (False, True)], ids=lambda p: f"{p[0]}-{'compiled' if p[1] else 'eager'}")
def model(request):
    case, compiled = request.param
    m = fx.build_model(case)
    m.case, m.compiled = case, compiled
    return m


def check_step(t, ref, carry, out, loss, metrics):
    close(carry["state"][0], ref["z_H"][t], f"z_H step {t}")
    close(carry["state"][1], ref["z_L"][t], f"z_L step {t}")
    close(out["logits"], ref["logits"][t], f"logits step {t}")
    close(out["q_halt_logits"], ref["q_halt_logits"][t], f"q_halt step {t}")
    close(out["q_continue_logits"], ref["q_continue_logits"][t], f"q_continue step {t}")
    np.testing.assert_array_equal(np.array(carry["halted"]), ref["halted"][t], f"halted step {t}")
    np.testing.assert_array_equal(np.array(carry["steps"]), ref["steps"][t], f"steps step {t}")
    close(loss, ref["loss"][t], f"loss step {t}")
    for name, value in metrics.items():
        close(value, ref[f"metric_{name}"][t], f"metric {name} step {t}")


def test_parameter_count_matches_official_sudoku_model():
    args = hrm.ModelArgs(seq_len=81, vocab_size=11, num_puzzle_identifiers=1, H_cycles=2, L_cycles=2, H_layers=4,
                         L_layers=4, hidden_size=512, expansion=4, num_heads=8, pos_encodings="rope",
                         halt_max_steps=16, halt_exploration_prob=0.1, puzzle_emb_ndim=512)
    params = tree_flatten(hrm.Model(args).trainable_parameters())
    assert sum(v.size for _, v in params) == 27_275_266


def test_eval_rollout_matches_official(model):
    for step in eval_rollout(model):
        check_step(*step)
    assert step[-1]["exact_accuracy"].item() >= 1  # the fixture makes one row exactly right


def train_rollout(model):
    """Steps through the official training rollout. The next step starts from the official carry state, so
    each step is compared on its own: over several steps float32 rounding differences grow by a few times per
    step (the recursion amplifies them; a float64 run of ours drifts from the fixture just the same)."""
    ref = fx.rollout(model.case, "train")
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


def test_training_rollout_matches_official(model):
    for t, ref, carry, rows, min_halt_steps in train_rollout(model):
        loss, (new_carry, out, metrics) = act.training_loss(model, carry, rows, min_halt_steps)
        check_step(t, ref, new_carry, out, loss, metrics)
        close(out["target_q_continue"], ref["target_q_continue"][t], f"target_q_continue step {t}")
    assert np.any(ref["halted"] != ref["halted"][:, :1]), "fixture should halt rows at different steps"


def test_gradients_match_official(model):
    if model.compiled:
        pytest.skip("gradients are checked once, eagerly")
    official = {name: value for name, value in fx.grads(model.case).items()}
    grad_fn = mx.grad(lambda params, rows, carry, mh: _loss(model, params, rows, carry, mh), argnums=(0, 1))
    ref_steps = set(fx.rollout(model.case, "train")["grad_steps"].tolist())
    checked = 0
    for t, ref, carry, rows, min_halt_steps in train_rollout(model):
        if t not in ref_steps:
            continue
        param_grads, row_grads = grad_fn(model.trainable_parameters(), rows, carry, min_halt_steps)
        theirs = hrm.Model.sanitize({k.split(".", 1)[1]: v for k, v in official.items() if k.startswith(f"step{t}.")
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


# -- a wrong model must fail the same checks -----------------------------------------------------------------

class PreNormBlock(layers.Block):
    def __call__(self, x, rope):
        x = x + self.self_attn(layers.rms_norm(x, self.norm_eps), rope)
        return x + self.mlp(layers.rms_norm(x, self.norm_eps))


class InputIntoH(hrm.Model):
    def __call__(self, state, inputs, puzzle_rows):
        x = self.input_embeddings(inputs, puzzle_rows)
        z_H, z_L = state
        for _ in range(self.args.H_cycles):
            for _ in range(self.args.L_cycles):
                z_L = self.L_level(z_L, z_H + x, self.rope)
            z_H = self.H_level(z_H, z_L + x, self.rope)
        q = self.q_head(z_H[:, 0])
        return (z_H, z_L), self.lm_head(z_H[:, self.puzzle_emb_len:]), q[:, 0], q[:, 1]


@pytest.mark.parametrize("variant", ["pre-norm", "x-into-H"])
def test_wrong_variant_fails_parity(variant, monkeypatch):
    if variant == "pre-norm":
        monkeypatch.setattr(layers.Block, "__call__", PreNormBlock.__call__)
        m = fx.build_model("rope")
    else:
        m = fx.build_model("rope", InputIntoH)
    m.case, m.compiled = "rope", False
    with pytest.raises(AssertionError):
        for step in eval_rollout(m):
            check_step(*step)
