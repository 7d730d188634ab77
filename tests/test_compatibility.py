"""Runs and model folders written by older versions keep working: a run of the code at 74cebbb (the version that
trains the maze-think and sudoku-think runs) resumes to the same arrays it reached itself, its model folder (mixer
options at the top level of config.json) loads, and the configs and checkpoints of those two real runs fit what
this code builds. Fixtures: tests/fixtures/runs (tools/make_run_fixture.py; the real runs' config.json and the
names and shapes of their latest checkpoint's tensors)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten

from hrm_mlx import data, io, speed
from hrm_mlx import train as training
from hrm_mlx.models import build
from hrm_mlx.train.checkpoints import carry_arrays

RUNS = Path(__file__).parent / "fixtures" / "runs"
OLD = RUNS / "tiny-74cebbb"
# The data folders the two runs built (~/.cache/hrm-mlx/data/<task>-generate-<key>): same settings, same key.
DATA_KEYS = {"maze-think": "26862a0a157b", "sudoku-think": "ed180723f92e"}


# Settings added after the runs were saved, with the default an older run resumes with.
NEW_SETTINGS = {("train.think_at_least", 0)}


def added_since(saved: dict, ours: dict, prefix: str = "") -> set:
    """(key, value) of the settings ``ours`` has beyond ``saved``; every other value must be equal."""
    added = set()
    for key, value in ours.items():
        if key not in saved:
            added.add((prefix + key, value))
        elif isinstance(value, dict) and isinstance(saved[key], dict):
            added |= added_since(saved[key], value, f"{prefix}{key}.")
        else:
            assert value == saved[key], prefix + key
    assert set(saved) <= set(ours), prefix
    return added


def arrays(folder: Path) -> dict:
    return {f"{name}/{key}": np.array(value) for name in ("model", "optimizer", "train_state", "carry")
            for key, value in mx.load(str(folder / f"{name}.safetensors")).items()}


@pytest.mark.slow
@pytest.mark.parametrize("speed_paths", ["0", "1"])
def test_a_run_of_an_older_version_resumes_to_the_same_arrays(speed_paths, tmp_path, user_env):
    """In a new process, as `hrm-mlx train --resume` starts (not with what an earlier test's runtime.configure()
    set in this process): bitwise on the plain path, which the old run took; the CPU speed paths (hrm_mlx.speed) sum
    gradients over row groups and reorder the prefix pooling's matmuls, which rounds in the last bits. Both runs keep mx.compile off (as the fixture was
    made): JIT-built kernels depend on the compiler flags (the old version built with -march=native) and on the
    build of a kernel of the same name that the shared cache $TMPDIR/mlx happens to hold, so a compiled comparison
    held only on a machine whose cache the old version had filled."""
    run = shutil.copytree(OLD / "run", tmp_path / "run")
    code = ("import json, sys; from pathlib import Path; from hrm_mlx import train; "
            "s = train.train(None, Path(sys.argv[1]), resume=True, cache_dir=Path(sys.argv[2])); "
            "print(json.dumps([s.step, s.interrupted]))")
    done = subprocess.run([sys.executable, "-c", code, str(run), str(tmp_path / "data")], capture_output=True,
                          text=True, timeout=600,
                          env={**user_env, speed.SWITCH: speed_paths, "MLX_DISABLE_COMPILE": "1"})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == [12, False]
    ours, theirs = arrays(run / "checkpoints" / "step_00000012"), arrays(OLD / "expected_step_12")
    assert ours.keys() == theirs.keys()
    for key in theirs:
        if speed_paths == "0" or theirs[key].dtype.kind in "biu":
            np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
        else:  # the carry's states went through 12 steps of 8 blocks and a prefix pooling whose projections the
            # speed paths apply in another order: last-bit differences grow there (as in test_speed)
            atol = 1e-5 if key.startswith("carry/") else 1e-6
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=atol, err_msg=key)
    state = json.loads((run / "checkpoints" / "step_00000012" / "state.json").read_text())
    assert state["loader"] == json.loads((OLD / "expected_step_12" / "state.json").read_text())["loader"]
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()][-2:] == [12, 12]


def test_a_model_folder_of_an_older_version_loads_and_saves_in_the_new_format(tmp_path):
    model, config = io.load(OLD / "model")
    assert config["mixer"] == "conv" and config["conv_kernel"] == 3  # the file as written
    assert model.args.mixer_args.kernel == 3 and not model.args.mixer_args.depthwise
    ema = {key.removeprefix("ema."): value for key, value in
           mx.load(str(OLD / "expected_step_12" / "train_state.safetensors")).items() if key.startswith("ema.")}
    for key, value in tree_flatten(model.trainable_parameters()):
        np.testing.assert_array_equal(np.array(value), np.array(ema[key]), err_msg=key)  # the saved EMA weights
    folder = io.save(model, config, tmp_path / "model")
    saved = json.loads((folder / "config.json").read_text())
    assert saved["mixer_args"] == {"grid_side": 0, "kernel": 3, "depthwise": False}
    assert not {"num_latents", "grid_side", "conv_kernel", "conv_depthwise"} & set(saved)
    again, _ = io.load(folder)
    for (key, ours), (_, theirs) in zip(tree_flatten(again.parameters()), tree_flatten(model.parameters())):
        np.testing.assert_array_equal(np.array(ours), np.array(theirs), err_msg=key)


@pytest.mark.parametrize("run", sorted(DATA_KEYS))
def test_the_runs_in_training_now_resume_with_this_code(run):
    """The real runs (config.json copied from /work/runs/<run>): their config reads back unchanged (a resume
    compares it key by key), builds the same data folder and the model, optimizer, training state and carry whose
    tensors their latest checkpoint holds, name for name and shape for shape."""
    saved = json.loads((RUNS / run / "config.json").read_text())
    checkpoint = json.loads((RUNS / run / "checkpoint.json").read_text())
    config = training.RunConfig.from_dict(saved)
    assert added_since(saved, config.to_dict()) <= NEW_SETTINGS  # later settings come in with their defaults
    assert data.cache_key(config.task, config.train.data.to_dict()) == DATA_KEYS[run]
    recipe = training.resolve_config(training.load_recipe(run), [f"train.init_from={config.train.init_from}"])
    assert recipe.to_dict() == config.to_dict()  # the recipe still makes this run

    sizes = checkpoint["tensors"]["carry"]["inputs"]
    meta = {"seq_len": sizes[1], "vocab_size": saved["model"]["vocab_size"], "num_puzzle_identifiers": 1}
    model = build(training.model_config(config, meta))
    trainer = training.Trainer(model, config.train, 20000, mx.distributed.init())
    carry = trainer.initial_carry(meta["seq_len"])
    ours = {"model": model.parameters(), "optimizer": trainer.optimizer.state, "train_state": trainer.tstate,
            "carry": carry_arrays(carry)}
    for name, tree in ours.items():
        shapes = {key: list(value.shape) for key, value in tree_flatten(tree)}
        assert shapes == checkpoint["tensors"][name], name
