"""Checkpoints of other trainers: runs of the official TRM trainer as its reproduction publishes them (the
Sanjin2024/TinyRecursiveModels-* layout) and nano-trm's Lightning checkpoints, each as a folder, a single file and
a Hub repo from an offline cache. The fixtures were made with each project's own code (tools/make_trm_run_fixtures.py,
tools/make_nano_trm_fixtures.py), and expected.npz holds what that code computes on example puzzles."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from hrm_mlx import io, solve as solver, tasks
from hrm_mlx.io import third_party
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import act
from hrm_mlx.io.torch_checkpoint import read_torch_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"
RUNS = FIXTURES / "trm_runs"
NANO = FIXTURES / "nano_trm"
COMMIT = "89abcdef0123456789abcdef0123456789abcdef"
NANO_SUDOKU_ROWS = [0, *range(2, 12)]  # nano-trm's token for each official Sudoku token


def hub_repo(cache: Path, repo: str, content: Path) -> Path:
    """A hand-built Hugging Face cache entry for ``repo`` whose snapshot holds a copy of ``content``'s files."""
    storage = cache / f"models--{repo.replace('/', '--')}"
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(COMMIT)
    snapshot = storage / "snapshots" / COMMIT
    shutil.copytree(content, snapshot)
    return snapshot


def run_folder(case: str) -> Path:
    return next(p.parent for p in (RUNS / case).rglob("all_config.yaml"))


def rollout(model, inputs: np.ndarray, steps: int) -> dict:
    batch = {"inputs": mx.array(inputs), "labels": mx.zeros(inputs.shape, dtype=mx.int32),
             "puzzle_identifiers": mx.zeros((len(inputs),), dtype=mx.int32)}
    step = act.make_eval_step(model, compiled=False)
    carry = act.initial_carry(model, batch)
    out = {"logits": [], "q_halt_logits": []}
    for _ in range(steps):
        carry, outputs, _, _ = step(carry, batch)
        out["logits"].append(np.array(outputs["logits"].astype(mx.float32)))
        out["q_halt_logits"].append(np.array(outputs["q_halt_logits"]))
    return {k: np.stack(v) for k, v in out.items()}


def assert_reproduces(model, expected, inputs: np.ndarray, vocab_rows=None) -> None:
    """Every ACT step's logits, halt logits and predicted tokens equal what the trainer's code computed."""
    ours = rollout(model, inputs, expected["logits"].shape[0])
    theirs = expected["logits"] if vocab_rows is None else expected["logits"][..., vocab_rows]
    np.testing.assert_allclose(ours["logits"], theirs, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours["q_halt_logits"], expected["q_halt_logits"], rtol=1e-4, atol=1e-4)
    predicted = ours["logits"].argmax(-1)
    if vocab_rows is None:
        np.testing.assert_array_equal(predicted, expected["predictions"])
        return
    # A dropped token's logit is gone: where the trainer's argmax was such a token, ours is its best kept one.
    predicted = np.array(vocab_rows)[predicted]
    kept = np.isin(expected["predictions"], vocab_rows)
    assert kept.mean() > 0.5
    np.testing.assert_array_equal(predicted[kept], expected["predictions"][kept])
    np.testing.assert_array_equal(predicted, np.array(vocab_rows)[theirs.argmax(-1)])


# -- runs of the official TRM trainer (the Sanjin2024 layout) ----------------------------------------------------

@pytest.mark.parametrize("case", ["sudoku-att", "sudoku-mlp", "maze"])
def test_trainer_run_tree_reproduces_the_trainer(tmp_path, case):
    expected = np.load(RUNS / case / "expected.npz")
    # The whole tree: the run folder is found below it. The trainer records no seq_len (it comes from the data
    # set): Sudoku's is known, a maze's canvas is 30 unless told (the fixture's is 11).
    summary = io.convert(RUNS / case, tmp_path / "out", seq_len=121 if case == "maze" else None)
    model, config = io.load(tmp_path / "out")
    assert config["family"] == "trm" and config["forward_dtype"] == "float32"
    assert config["task"] == ({"name": "sudoku"} if case.startswith("sudoku") else {"name": "maze", "canvas": 11})
    assert config["mlp_t"] == (case == "sudoku-mlp")
    assert any("data_path" in note for note in summary["notes"])  # the task came from all_config's data_paths
    assert_reproduces(model, expected, expected["inputs"])  # the highest step_<N>, not the older file


def test_single_step_file_with_config(tmp_path):
    run = run_folder("sudoku-att")
    shutil.copy(run / "step_1302", tmp_path / "step_1302")
    with pytest.raises(HrmMlxError, match="give a config"):
        io.convert(tmp_path / "step_1302", tmp_path / "a")
    io.convert(tmp_path / "step_1302", tmp_path / "out", config=run / "all_config.yaml")
    expected = np.load(RUNS / "sudoku-att" / "expected.npz")
    assert_reproduces(io.load(tmp_path / "out")[0], expected, expected["inputs"])


@pytest.mark.parametrize("nested", [True, False])
def test_trainer_run_from_the_hub_cache(hub, nested):
    """The published repos' file list is not known here: the run folder may sit at the top or below it."""
    run = run_folder("sudoku-mlp")
    hub_repo(hub, "Sanjin2024/TinyRecursiveModels-Sudoku-Extreme-mlp", RUNS / "sudoku-mlp" if nested else run)
    model, config = io.load("Sanjin2024/TinyRecursiveModels-Sudoku-Extreme-mlp")
    expected = np.load(RUNS / "sudoku-mlp" / "expected.npz")
    assert_reproduces(model, expected, expected["inputs"])
    folder = io.resolve("Sanjin2024/TinyRecursiveModels-Sudoku-Extreme-mlp")
    assert COMMIT[:12] in folder.name


def test_known_repo_without_all_config_takes_the_documented_architecture(hub, tmp_path):
    # The real run's architecture (recipe trm-maze-30x30-hard-1k: hidden 512) does not fit the tiny fixture, so
    # the converter names the first weight that differs: proof that the recipe was applied.
    (tmp_path / "repo").mkdir()
    shutil.copy(run_folder("maze") / "step_2604", tmp_path / "repo" / "step_2604")
    hub_repo(hub, "Sanjin2024/TinyRecursiveModel-Maze-Hard", tmp_path / "repo")
    with pytest.raises(HrmMlxError, match=r"^Sanjin2024/TinyRecursiveModel-Maze-Hard: weight '[^']*' \[1536, 512\] is missing"):
        io.load("Sanjin2024/TinyRecursiveModel-Maze-Hard")
    assert third_party.KNOWN_REPOS["Sanjin2024/TinyRecursiveModels-ARC-AGI-1"][0] == "trm-arc-1"


def test_converted_trainer_run_solves(tmp_path):
    folder = tmp_path / "out"
    io.convert(RUNS / "sudoku-att", folder)
    model, config = io.load(folder)
    expected = np.load(RUNS / "sudoku-att" / "expected.npz")
    puzzle = tasks.get("sudoku").parse((Path(__file__).parent.parent / "examples" / "sudoku.txt").read_text())[0]
    [solution] = solver.solve(model, config, [puzzle], max_steps=expected["logits"].shape[0], stop="never",
                              num_aug=1)  # the model alone, as their code runs it
    assert np.array_equal(solution.answer, tasks.get("sudoku").decode(expected["predictions"][-1, 0]))


# -- nano-trm Lightning checkpoints ------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["sudoku", "maze"])
def test_nano_trm_run_reproduces_its_module(tmp_path, case):
    expected = np.load(NANO / case / "expected.npz")
    summary = io.convert(NANO / case, tmp_path / "out")  # <run>/checkpoints/last.ckpt, found below the run
    model, config = io.load(tmp_path / "out")
    assert summary["family"] == "trm" and config["no_ACT_continue"]
    if case == "sudoku":
        assert config["task"] == {"name": "sudoku"} and config["vocab_size"] == 11 and config["mlp_t"]
        inputs = np.where(expected["inputs"] == 0, 0, expected["inputs"] - 1)  # the official encoding
        assert_reproduces(model, expected, inputs, NANO_SUDOKU_ROWS)
    else:
        assert config["task"] == {"name": "maze", "canvas": 11} and config["pos_encodings"] == "rope"
        assert config["puzzle_emb_len"] == 2 and config["puzzle_emb_ndim"] == 24
        assert_reproduces(model, expected, expected["inputs"])


def test_nano_trm_single_file_and_hub_repo(hub, tmp_path):
    ckpt = NANO / "maze" / "checkpoints" / "last.ckpt"
    expected = np.load(NANO / "maze" / "expected.npz")
    assert_reproduces(io.load(ckpt)[0], expected, expected["inputs"])  # a single .ckpt file
    hub_repo(hub, "someone/nano-trm-maze", NANO / "maze")
    assert_reproduces(io.load("someone/nano-trm-maze")[0], expected, expected["inputs"])
    with pytest.raises(HrmMlxError, match="a config is not used"):
        io.convert(ckpt, tmp_path / "x", config="trm-maze-30x30-hard-1k")


def test_nano_trm_hyper_parameters_survive_the_safe_reader():
    loaded = read_torch_checkpoint(NANO / "maze" / "checkpoints" / "last.ckpt")
    hp = loaded.extras["hyper_parameters"]
    assert hp["output_dir"] == "/tmp/logs/train/runs/2025-11-02_10-00-00"  # a pickled pathlib.PosixPath
    assert hp["pos_emb_type"] == "1d" and loaded.dtypes["z_H_init"] == "float32"
    assert "EMACallback" in loaded.extras["callbacks"]
    assert list(loaded.arrays)[0] == "z_H_init"  # the module's state_dict, not the EMA shadow


@pytest.mark.parametrize("change, message", [
    ({"use_conv_swiglu": True}, "convolutional SwiGLU"),
    ({"use_board_swiglu": True}, "board-aware SwiGLU"),
    ({"pos_emb_type": "2d"}, "2D rotary embedding"),
    ({"puzzle_emb_len": 0}, "puzzle_emb_len 0"),
])
def test_nano_trm_variants_without_a_layer_are_refused(change, message):
    loaded = read_torch_checkpoint(NANO / "maze" / "checkpoints" / "last.ckpt")
    extras = {**loaded.extras, "hyper_parameters": {**loaded.extras["hyper_parameters"], **change}}
    with pytest.raises(HrmMlxError, match=message):
        third_party.nano_trm(loaded.arrays, loaded.dtypes, extras, "x.ckpt", [])


def test_converted_nano_trm_model_solves(tmp_path):
    io.convert(NANO / "sudoku", tmp_path / "out")
    model, config = io.load(tmp_path / "out")
    expected = np.load(NANO / "sudoku" / "expected.npz")
    sudoku = tasks.get("sudoku")
    puzzle = sudoku.parse((Path(__file__).parent.parent / "examples" / "sudoku.txt").read_text())[0]
    [solution] = solver.solve(model, config, [puzzle], max_steps=expected["logits"].shape[0], stop="never",
                              num_aug=1)  # the model alone, as their code runs it
    theirs = np.array(NANO_SUDOKU_ROWS)[expected["logits"][-1, 0][:, NANO_SUDOKU_ROWS].argmax(-1)]
    assert np.array_equal(solution.answer, sudoku.decode(np.where(theirs == 0, 0, theirs - 1)))


# -- finding the checkpoint --------------------------------------------------------------------------------------

def test_locate_rules(tmp_path):
    (tmp_path / "a" / "run1").mkdir(parents=True)
    (tmp_path / "a" / "run2").mkdir(parents=True)
    for name in ("run1/step_10", "run1/step_9", "run1/step_10_all_preds.0", "run2/step_3"):
        (tmp_path / "a" / name).write_bytes(b"x")
    assert third_party.locate(tmp_path / "a" / "run1") == tmp_path / "a" / "run1" / "step_10"
    with pytest.raises(HrmMlxError, match="checkpoints in 2 folders"):
        third_party.locate(tmp_path / "a")
    lightning = tmp_path / "l"
    lightning.mkdir()
    (lightning / "last.ckpt").write_bytes(b"x")
    assert third_party.locate(lightning) == lightning / "last.ckpt"
    (lightning / "epoch_007.ckpt").write_bytes(b"x")
    assert third_party.locate(lightning) == lightning / "epoch_007.ckpt"  # ModelCheckpoint's best
    (lightning / "last.ckpt").unlink()
    (lightning / "epoch_003.ckpt").write_bytes(b"x")
    with pytest.raises(HrmMlxError, match="2 Lightning checkpoints"):
        third_party.locate(lightning)
    assert third_party.locate(tmp_path / "empty") is None
