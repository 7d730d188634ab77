"""Model folders: save/load round trips, sharding, atomic writes, the official-checkpoint converter (checked
against the official rollouts), the Hugging Face cache (offline), and one-line errors for bad input."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
import yaml
from mlx.utils import tree_flatten

import hrm_fixtures as fx
from user_errors import assert_one_line_error
import hrm_mlx
from hrm_mlx import io
from hrm_mlx.io import conversion
from hrm_mlx.cli import main as cli_main
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import act

COMMIT = "0123456789abcdef0123456789abcdef01234567"


# -- helpers ---------------------------------------------------------------------------------------------------

def params(model) -> dict[str, np.ndarray]:
    return {k: np.array(v.astype(mx.float32)) for k, v in tree_flatten(model.parameters())}


def assert_same_params(a, b):
    pa, pb = params(a), params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)


def one_step(model, case="rope"):
    ref = fx.rollout(case, "eval")
    batch = {k: mx.array(ref[k]) for k in act.DATA_KEYS}
    carry = act.make_eval_step(model, compiled=False)(act.initial_carry(model, batch), batch)[1]
    return {k: np.array(v) for k, v in carry.items()}


def official_yaml(case: str, **overrides) -> dict:
    """An all_config.yaml shaped like the official PretrainConfig dump (yaml.dump of model_dump: sorted keys,
    arch extras beside name/loss, the dataset-derived fields absent)."""
    c = fx.config(case)
    arch = {k: c[k] for k in ("H_cycles", "H_layers", "L_cycles", "L_layers", "expansion", "halt_exploration_prob",
                              "halt_max_steps", "hidden_size", "num_heads", "pos_encodings", "puzzle_emb_ndim")}
    arch.update(name="hrm.hrm_act_v1@HierarchicalReasoningModel_ACTV1",
                loss={"name": "losses@ACTLossHead", "loss_type": c["loss_type"]},
                forward_dtype="float32")  # an arch override (arch.forward_dtype=float32), as in the fixtures
    arch.update(overrides)
    return {"arch": arch, "data_path": "data/sudoku-extreme-1k-aug-1000", "global_batch_size": 4, "epochs": 10,
            "lr": 1e-4, "lr_min_ratio": 1.0, "lr_warmup_steps": 10, "weight_decay": 1.0, "beta1": 0.9,
            "beta2": 0.95, "puzzle_emb_lr": 1e-4, "puzzle_emb_weight_decay": 1.0, "project_name": "p",
            "run_name": "r", "checkpoint_path": "checkpoints/p/r", "seed": 0, "checkpoint_every_eval": True,
            "eval_interval": 5, "eval_save_outputs": []}


def official_folder(path: Path, case="rope", kind="f32", config=True, **overrides) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(fx.FIXTURES / case / f"checkpoint_{kind}", path / "checkpoint")
    if config:
        (path / "all_config.yaml").write_text(yaml.dump(official_yaml(case, **overrides)))
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """A valid model folder (the rope fixture's weights)."""
    folder = tmp_path_factory.mktemp("saved") / "model"
    config = {"family": "hrm", **fx.config("rope")}
    io.save(fx.build_model("rope"), config, folder)
    return folder


def hub_snapshot(cache: Path, repo: str, commit: str = COMMIT) -> Path:
    storage = cache / f"models--{repo.replace('/', '--')}"
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / "main").write_text(commit)
    snapshot = storage / "snapshots" / commit
    snapshot.mkdir(parents=True)
    return snapshot


# -- save / load -----------------------------------------------------------------------------------------------

def test_round_trip_same_weights_and_outputs(saved):
    model, config = hrm_mlx.load(saved)
    original = fx.build_model("rope")
    assert_same_params(model, original)
    assert config["family"] == "hrm" and config["hidden_size"] == 64
    ours, theirs = one_step(model), one_step(original)
    for k in ("logits", "q_halt_logits"):
        np.testing.assert_array_equal(ours[k], theirs[k])
    assert sorted(p.name for p in saved.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert not [p for p in saved.parent.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_sharded_round_trip(tmp_path):
    model = fx.build_model("learned")
    folder = hrm_mlx.save(model, {"family": "hrm", **fx.config("learned")}, tmp_path / "m", max_shard_size="40kB")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 3 and not (folder / "model.safetensors").exists()
    assert index["metadata"]["total_size"] == sum(v.nbytes for _, v in tree_flatten(model.parameters()))
    # a tensor over the limit (gate_up_proj: 512 x 64 float32 = 131 kB) sits alone in its shard
    big = index["weight_map"]["H_level.layers.0.mlp.gate_up_proj.weight"]
    assert [k for k, v in index["weight_map"].items() if v == big] == ["H_level.layers.0.mlp.gate_up_proj.weight"]
    loaded, _ = io.load(folder)
    assert_same_params(loaded, model)


def test_save_is_atomic_and_replaces_only_model_folders(tmp_path, monkeypatch):
    model, config = fx.build_model("rope"), {"family": "hrm", **fx.config("rope")}
    folder = io.save(model, config, tmp_path / "m", max_shard_size="100kB")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def explode(*args, **kwargs):
        raise KeyboardInterrupt  # an interruption in the middle of writing the weights

    monkeypatch.setattr(mx, "save_safetensors", explode)
    with pytest.raises(KeyboardInterrupt):
        io.save(model, config, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # the old model is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # and no temp folder is left behind
    monkeypatch.undo()

    io.save(model, config, folder)  # a model folder is replaced (shards -> one file)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(HrmMlxError, match="refusing to replace"):
        io.save(model, config, tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_identifiers_travel_with_the_model(tmp_path):
    names = ["<blank>"] + [f"task{i}" for i in range(5)]
    model, config = fx.build_model("rope"), {"family": "hrm", **fx.config("rope")}
    folder = io.save(model, config, tmp_path / "m", identifiers=names)
    assert io.load_identifiers(folder) == names
    with pytest.raises(HrmMlxError, match="3 puzzle identifiers"):
        io.save(model, config, tmp_path / "n", identifiers=names[:3])


def test_saved_dtype_option(tmp_path):
    model = fx.build_model("rope")
    folder = io.save(model, {"family": "hrm", **fx.config("rope")}, tmp_path / "m", dtype="bfloat16")
    loaded, _ = io.load(folder)
    assert {v.dtype for _, v in tree_flatten(loaded.parameters())} == {mx.bfloat16}


# -- converting official checkpoints ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("case", fx.CASES)
def test_converted_checkpoint_reproduces_official_rollout(tmp_path, case):
    src = official_folder(tmp_path / "official", case)
    # rope: nothing in the weights tells seq_len (16 here); learned: the position table does
    summary = io.convert(src, tmp_path / "out", seq_len=16 if case == "rope" else None)
    assert summary["params"] == sum(v.size for _, v in tree_flatten(fx.build_model(case).parameters()))
    assert summary["dtypes"] == ["float32"]
    model, config = io.load(tmp_path / "out")
    assert config["seq_len"] == 16 and config["num_puzzle_identifiers"] == 6 and config["vocab_size"] == 11
    assert_same_params(model, fx.build_model(case))

    ref = fx.rollout(case, "eval")
    batch = {k: mx.array(ref[k]) for k in act.DATA_KEYS}
    step = act.make_eval_step(model, compiled=False)
    carry = act.initial_carry(model, batch)
    for t in range(ref["loss"].shape[0]):
        carry, out, loss, _ = step(carry, batch)
        for ours, name in ((carry["state"][0], "z_H"), (out["logits"], "logits"),
                           (out["q_halt_logits"], "q_halt_logits"), (out["q_continue_logits"], "q_continue_logits"),
                           (loss, "loss")):
            np.testing.assert_allclose(np.array(ours), ref[name][t], rtol=1e-4, atol=1e-4, err_msg=f"{name} {t}")


@pytest.mark.parametrize("case", ["att", "mlp_t"])
def test_converts_official_trm_checkpoints(tmp_path, case):
    fixtures = Path(__file__).parent / "fixtures" / "trm" / case
    config = json.loads((fixtures / "config.json").read_text())
    arch = {k: v for k, v in config.items()
            if k not in ("family", "batch_size", "seq_len", "vocab_size", "num_puzzle_identifiers", "loss_type")}
    arch.update(name="recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1",
                loss={"name": "losses@ACTLossHead", "loss_type": config["loss_type"]})
    (tmp_path / "src").mkdir()
    shutil.copy(fixtures / "checkpoint", tmp_path / "src" / "checkpoint")
    (tmp_path / "src" / "all_config.yaml").write_text(yaml.dump({"arch": arch, "data_path": "data/x"}))
    io.convert(tmp_path / "src", tmp_path / "out", seq_len=config["seq_len"])
    model, loaded = io.load(tmp_path / "out")
    assert loaded["family"] == "trm" and loaded["puzzle_emb_len"] == config["puzzle_emb_len"]
    expected = model.sanitize(mx.load(str(fixtures / "weights.safetensors")))
    ours = dict(tree_flatten(model.parameters()))
    assert ours.keys() == expected.keys()
    for k, v in ours.items():
        np.testing.assert_array_equal(np.array(v), np.array(expected[k]), err_msg=k)


def test_bf16_checkpoint_equals_rounded_f32_weights(tmp_path):
    io.convert(official_folder(tmp_path / "bf16", kind="bf16"), tmp_path / "a", seq_len=16)
    io.convert(official_folder(tmp_path / "f32"), tmp_path / "b", seq_len=16, dtype="bfloat16")
    a, _ = io.load(tmp_path / "a")
    b, _ = io.load(tmp_path / "b")
    rounded = {k: np.array(v.astype(mx.bfloat16).astype(mx.float32))
               for k, v in tree_flatten(fx.build_model("rope").parameters())}
    for model in (a, b):
        flat = dict(tree_flatten(model.parameters()))
        assert {v.dtype for v in flat.values()} == {mx.bfloat16}
        for k, v in flat.items():
            np.testing.assert_array_equal(np.array(v.astype(mx.float32)), rounded[k], err_msg=k)


def test_convert_infers_task_and_seq_len_and_takes_config_or_flags(tmp_path):
    src = official_folder(tmp_path / "official", "learned")
    summary = io.convert(src, tmp_path / "out")
    assert summary["task"] is None and any("does not fit sudoku" in n for n in summary["notes"])

    # rope with the official data_path: the task says sudoku, so seq_len 81
    io.convert(official_folder(tmp_path / "rope"), tmp_path / "sudoku")
    config = io.read_config(tmp_path / "sudoku")
    assert config["seq_len"] == 81 and config["task"] == {"name": "sudoku"}
    assert config["forward_dtype"] == "float32" and config["loss_type"] == "stablemax_cross_entropy"

    # a single file plus --config (here the official yaml kept elsewhere) and flags
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(fx.FIXTURES / "rope" / "checkpoint_f32", bare / "step_100")
    (tmp_path / "arch.yaml").write_text(yaml.dump(official_yaml("rope")))
    io.convert(bare / "step_100", tmp_path / "maze", config=tmp_path / "arch.yaml", task="maze", seq_len=16)
    assert io.read_config(tmp_path / "maze")["task"] == {"name": "maze", "canvas": 4}
    with pytest.raises(HrmMlxError, match="give a config"):
        io.convert(bare, tmp_path / "x")  # no all_config.yaml and no --config
    with pytest.raises(HrmMlxError, match="contradicts the learned position table"):
        io.convert(src, tmp_path / "y", seq_len=20)


# -- the Hugging Face cache ------------------------------------------------------------------------------------

def test_hub_repo_from_offline_cache(hub, saved, monkeypatch):
    snapshot = hub_snapshot(hub, "owner/name")
    for p in saved.iterdir():
        shutil.copy(p, snapshot / p.name)
    model, config = hrm_mlx.load("owner/name")
    assert_same_params(model, fx.build_model("rope"))
    assert io.resolve("owner/name", revision=COMMIT) == snapshot
    # HF_HUB_CACHE names the cache directly
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HOME", str(hub.parent / "elsewhere"))
    assert io.resolve("owner/name") == snapshot
    with pytest.raises(HrmMlxError, match="not in the local cache while HF_HUB_OFFLINE is set"):
        io.load("owner/missing")


def test_official_hub_repo_is_converted_once(hub, monkeypatch):
    official_folder(hub_snapshot(hub, "sapientinc/HRM-checkpoint-tiny"), "learned")
    calls = []
    real = conversion.convert
    monkeypatch.setattr(conversion, "convert", lambda *a, **k: calls.append(a) or real(*a, **k))
    model, config = io.load("sapientinc/HRM-checkpoint-tiny")
    folder = io.resolve("sapientinc/HRM-checkpoint-tiny")
    again, _ = io.load("sapientinc/HRM-checkpoint-tiny")
    assert len(calls) == 1
    assert folder.parent == Path(os.environ["HRM_MLX_CACHE"]) / "converted" and COMMIT[:12] in folder.name
    assert config["seq_len"] == 16 and config["pos_encodings"] == "learned"
    assert_same_params(model, fx.build_model("learned"))
    assert_same_params(again, model)


def test_local_official_folder_is_converted_once(hub, tmp_path, monkeypatch, capsys, caplog):
    src = official_folder(tmp_path / "official", "learned")
    calls = []
    real = conversion.convert
    monkeypatch.setattr(conversion, "convert", lambda *a, **k: calls.append(a) or real(*a, **k))
    with caplog.at_level("INFO", logger="hrm_mlx"):
        first = io.resolve(src)
    assert "converting the checkpoint" in caplog.text  # the library logs; it never prints
    assert capsys.readouterr() == ("", "")
    assert first.parent == Path(os.environ["HRM_MLX_CACHE"]) / "converted"
    assert io.resolve(src) == first and io.resolve(src / "checkpoint") == first  # the file itself works too
    assert len(calls) == 1
    os.utime(src / "checkpoint", ns=(1, 1))  # a changed checkpoint is converted anew
    assert io.resolve(src) != first and len(calls) == 2


def test_known_repo_without_all_config_uses_official_defaults(hub):
    # The ARC-2 repo lacks all_config.yaml; its architecture is the official default (recipe hrm-arc-1). The
    # tiny fixture does not fit that architecture, so the weight check names the first mismatch.
    official_folder(hub_snapshot(hub, "sapientinc/HRM-checkpoint-ARC-2"), "rope", config=False)
    with pytest.raises(HrmMlxError, match=r"^sapientinc/HRM-checkpoint-ARC-2: weight '[^']*' .*(is missing|has shape)"):
        io.load("sapientinc/HRM-checkpoint-ARC-2")


# -- bad input through the CLI: exit code 2 and one line -------------------------------------------------------

def run_cli(args, capsys, monkeypatch) -> tuple[int, str]:
    cli_main._register()
    monkeypatch.setattr(cli_main, "_register", lambda *argv: None)
    monkeypatch.setattr(sys, "argv", ["hrm-mlx", *map(str, args)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main()
    return exit_info.value.code, capsys.readouterr().err


def corrupt(folder: Path, case: str):
    config = json.loads((folder / "config.json").read_text())
    weights = {k: np.array(v) for k, v in mx.load(str(folder / "model.safetensors")).items()}
    data = (folder / "model.safetensors").read_bytes()
    if case == "config missing":
        (folder / "config.json").unlink()
    elif case == "config bad json":
        (folder / "config.json").write_text('{"family": "hrm",')
    elif case == "config missing key":
        del config["hidden_size"]
    elif case == "config bad value":
        config["pos_encodings"] = "sideways"
    elif case == "config bad type":
        config["num_heads"] = "four"
    elif case == "config unknown key":
        config["hiden_size"] = 64  # a hand-edited typo
    elif case == "config seq_len":
        config["task"] = {"name": "maze", "canvas": 4}
        config["seq_len"] = 15  # a 4x4 canvas is 16 tokens
    elif case == "weight missing":
        del weights["lm_head.weight"]
    elif case == "weight unexpected":
        weights["extra.weight"] = np.zeros((2, 2), np.float32)
    elif case == "weight wrong shape":
        weights["lm_head.weight"] = np.zeros((11, 32), np.float32)
    elif case == "truncated":
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif case == "corrupted header":
        (folder / "model.safetensors").write_bytes(data[:8] + b"#" * 40 + data[48:])
    if case.startswith("config") and case not in ("config missing", "config bad json"):
        (folder / "config.json").write_text(json.dumps(config))
    if case.startswith("weight"):
        mx.save_safetensors(str(folder / "model.safetensors"), {k: mx.array(v) for k, v in weights.items()})


MODEL_FOLDER_CASES = {
    "config missing": "neither a model folder",
    "config bad json": "invalid JSON",
    "config missing key": "missing key hidden_size",
    "config bad value": "pos_encodings must be",
    "config bad type": "num_heads must be a non-negative integer",
    "config unknown key": "config.json: unknown key 'hiden_size'",
    "config seq_len": "seq_len is 15, but maze puzzles as its task block says",
    "weight missing": "weight 'lm_head.weight' [11, 64] is missing",
    "weight unexpected": "unexpected weight 'extra.weight' [2, 2]",
    "weight wrong shape": "weight 'lm_head.weight' has shape [11, 32], the config expects [11, 64]",
    "truncated": "truncated or corrupted safetensors file",
    "corrupted header": "truncated or corrupted safetensors file",
}


@pytest.mark.slow
@pytest.mark.parametrize("case", MODEL_FOLDER_CASES)
def test_bad_model_folder_is_a_one_line_error(case, saved, tmp_path, capsys, monkeypatch):
    folder = shutil.copytree(saved, tmp_path / "model")
    corrupt(folder, case)
    with pytest.raises(HrmMlxError):
        io.load(folder)
    code, err = run_cli(["convert", folder, tmp_path / "out"], capsys, monkeypatch)
    assert_one_line_error(code, err, MODEL_FOLDER_CASES[case])
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_missing_sources_are_one_line_errors(hub, tmp_path, capsys, monkeypatch):
    code, err = run_cli(["convert", tmp_path / "nowhere", tmp_path / "out"], capsys, monkeypatch)
    assert_one_line_error(code, err, "no such model folder or checkpoint file")
    code, err = run_cli(["convert", "owner/not-cached", tmp_path / "out"], capsys, monkeypatch)
    assert_one_line_error(code, err, "not in the local cache while HF_HUB_OFFLINE is set")
    bare = official_folder(tmp_path / "bare", config=False)
    code, err = run_cli(["convert", bare, tmp_path / "out"], capsys, monkeypatch)
    assert_one_line_error(code, err, "no all_config.yaml beside the checkpoint")
    code, err = run_cli(["convert", official_folder(tmp_path / "ok"), tmp_path / "out", "--dtype", "int8"],
                        capsys, monkeypatch)
    assert_one_line_error(code, err, "--dtype must be one of")
    (tmp_path / "ok" / "all_config.yaml").write_text("arch: [unclosed")
    code, err = run_cli(["convert", tmp_path / "ok", tmp_path / "out"], capsys, monkeypatch)
    assert_one_line_error(code, err, "invalid YAML")


def test_convert_command_prints_summary(tmp_path, capsys, monkeypatch):
    code, _ = run_cli(["convert", official_folder(tmp_path / "src"), tmp_path / "out", "--seq-len", "16",
                       "--dtype", "bfloat16"], capsys, monkeypatch)
    assert code == 0
    # (the summary went to stdout through rich; check the folder instead of the table layout)
    assert io.read_config(tmp_path / "out")["seq_len"] == 16


def test_convert_json_on_stdout_and_out_file(tmp_path, capsys, monkeypatch):
    cli_main._register()
    monkeypatch.setattr(cli_main, "_register", lambda *argv: None)
    monkeypatch.setattr(sys, "argv", ["hrm-mlx", "convert", str(official_folder(tmp_path / "src")),
                                      str(tmp_path / "model"), "--seq-len", "16", "--json", "--out",
                                      str(tmp_path / "c.json")])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main()
    printed = json.loads(capsys.readouterr().out)
    assert exit_info.value.code == 0 and printed["output"] == str(tmp_path / "model") and printed["params"] > 0
    assert json.loads((tmp_path / "c.json").read_text()) == printed
    code, err = run_cli(["convert", tmp_path / "src", tmp_path / "again", "--out", tmp_path / "no" / "c.json"],
                        capsys, monkeypatch)
    assert_one_line_error(code, err, "--out")
    assert not (tmp_path / "again").exists()  # refused before converting


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.slow
def test_pickle_payload_is_refused_without_executing(tmp_path):
    src = official_folder(tmp_path / "evil")
    marker = tmp_path / "pwned"
    with zipfile.ZipFile(src / "checkpoint", "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": _Payload(marker)}, protocol=2))
        archive.writestr("archive/byteorder", "little")
    result = subprocess.run([sys.executable, "-m", "hrm_mlx", "convert", str(src), str(tmp_path / "out")],
                            capture_output=True, text=True)
    assert_one_line_error(result.returncode, result.stderr, "system from the checkpoint pickle")
    assert "nothing was executed" in result.stderr
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_a_training_run_folder_serves_its_model(tmp_path):
    """`--model RUN_DIR` (what `hrm-mlx train` prints) takes the run's model/ folder, or says it has none yet."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"task": "maze", "model": {}, "train": {}}))  # the run's config
    (run / "metrics.jsonl").write_text("")
    with pytest.raises(HrmMlxError, match="is a training run without a model yet: its model/ folder is written") as error:
        io.load(run)
    assert " --" not in str(error.value)  # the library names no command-line option
    config = {"family": "hrm", **fx.config("rope"), "task": {"name": "maze", "canvas": 4}}
    io.save(fx.build_model("rope"), config, run / "model")
    assert io.load(run)[1]["task"] == {"name": "maze", "canvas": 4}
