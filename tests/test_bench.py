"""hrm-mlx bench: the JSON report of each section (solving, precision, training, FLARE), the models --model accepts
and its errors. Batch 2, one trial and tiny models keep each run to seconds."""

import json
import math
import subprocess
import sys

import mlx.core as mx
import pytest
from mlx.utils import tree_flatten
from test_train import TINY_MODEL
from typer.testing import CliRunner

from hrm_mlx import bench, flare_bench, io, recipes
from hrm_mlx.cli.bench import MODEL_HELP
from hrm_mlx.cli.main import _register, app
from user_errors import raises_one_line

_register()
runner = CliRunner()

TINY_CONFIG = {**TINY_MODEL, "seq_len": 25, "vocab_size": 6, "num_puzzle_identifiers": 1}


def run_bench(tmp_path, *args) -> dict:
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "--batch", "2", "--trials", "1", "--out", str(out), "--no-recipes",
                                 "--no-first-answer", *args])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".bench.json")) == []  # no temp file left
    return json.loads(out.read_text())


@pytest.mark.slow
def test_bench_times_the_default_recipes_and_the_first_answer(tmp_path):
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "--model", str(tiny_recipe(tmp_path)), "--batch", "2", "--trials", "1",
                                 "--no-precision", "--no-train", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["recipes"]) == {"sudoku-cpu", "maze-cpu"}
    for numbers in report["recipes"].values():
        assert numbers["batch"] == 2 and numbers["examples_per_s"] == pytest.approx(2000 / numbers["ms_per_step"])
    first = report["first_answer"]
    assert first["puzzle"] == "examples/sudoku.txt" and len(first["warm_runs_s"]) == 1  # --trials
    assert 0 < first["help_s"] and 0 < first["warm_s"] and 0 < first["cold_s"]
    assert "time to a first answer" in result.output


def tiny_recipe(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"task": "maze", "model": TINY_CONFIG, "train": {"ema": True}}))
    return path


@pytest.mark.slow
def test_bench_json_on_stdout_and_no_training_note_without_training(tmp_path):
    result = runner.invoke(app, ["bench", "--model", str(tiny_recipe(tmp_path)), "--batch", "2", "--trials", "1",
                                 "--no-precision", "--no-train", "--no-recipes", "--no-first-answer", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # the tables and progress went to stderr
    assert report["eval_step"]["compiled"]["ms_per_step"] > 0 and "train_step" not in report
    assert "training step" not in result.output and not any("training" in note for note in report["model"]["notes"])


@pytest.mark.slow
def test_bench_times_eval_and_training_steps_compiled_and_eager(tmp_path):
    report = run_bench(tmp_path, "--model", "maze-cpu", "--no-precision")
    assert report["environment"]["cpu"] and report["environment"]["mlx"]
    assert report["model"]["name"] == "maze-cpu" and "precision" not in report and "flare" not in report
    evaluation = report["eval_step"]
    halt_max_steps = recipes.load("maze-cpu")["model"]["halt_max_steps"]
    assert evaluation["halt_max_steps"] == halt_max_steps and evaluation["params"] > 0
    for section in ("eval_step", "train_step"):
        for mode in ("compiled", "eager"):
            numbers = report[section][mode]
            assert numbers["ms_per_step"] > 0 and numbers["peak_memory_gb"] > 0 and len(numbers["trials"]) == 1
    for mode in ("compiled", "eager"):
        numbers = evaluation[mode]
        assert numbers["puzzles_per_s"] == pytest.approx(2 / (halt_max_steps * numbers["ms_per_step"] / 1000))
        assert 0 < numbers["share_of_peak"]
    assert report["train_step"]["compiled"]["examples_per_s"] == pytest.approx(
        2 / (report["train_step"]["compiled"]["ms_per_step"] / 1000))


@pytest.mark.slow
def test_precision_compares_dtypes_on_the_same_weights(tmp_path):
    report = run_bench(tmp_path, "--model", str(tiny_recipe(tmp_path)), "--no-train", "--precision-batch", "3")
    assert report["precision"]["batch"] == 3
    dtypes = report["precision"]["dtypes"]
    assert list(dtypes) == ["float32", "bfloat16", "float16"]
    assert dtypes["float32"]["max_logit_diff"] == 0 and dtypes["float32"]["speed_vs_float32"] == 1
    for dtype in ("bfloat16", "float16"):
        assert dtypes[dtype]["ms_per_step"] > 0 and dtypes[dtype]["speed_vs_float32"] > 0
        assert math.isfinite(dtypes[dtype]["max_logit_diff"])
    # different weights per dtype would differ by the logits' own size (~1), not by rounding
    assert 0 < dtypes["bfloat16"]["max_logit_diff"] < 0.1


@pytest.mark.slow
def test_bench_of_a_model_folder_uses_its_weights_and_config(tmp_path):
    model = bench.build_model({**TINY_CONFIG, "L_layers": 2})
    model.update({"lm_head": {"weight": mx.full(model.lm_head.weight.shape, 0.125)}})
    folder = io.save(model, {**TINY_CONFIG, "L_layers": 2}, tmp_path / "model")

    target = bench.resolve_model(str(folder))
    built = dict(tree_flatten(bench.build_model(target.config, "bfloat16", target.parameters).parameters()))
    saved = dict(tree_flatten(model.parameters()))
    assert all(mx.array_equal(built[k], saved[k]).item() for k in saved)
    assert target.config["L_layers"] == 2 and "default training settings" in target.train_note

    report = run_bench(tmp_path, "--model", str(folder), "--no-precision")
    assert report["model"]["source"].startswith("model folder")
    assert report["eval_step"]["params"] == sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    assert report["train_step"]["compiled"]["ms_per_step"] > 0


def test_official_aliases_name_existing_recipes():
    for alias, recipe in bench.OFFICIAL_MODELS.items():
        target = bench.resolve_model(alias)
        assert recipe in recipes.names() and target.source.startswith(f"recipe {recipe},")
    assert "att" in bench.OFFICIAL_MODELS["official-trm-sudoku"]
    assert all(alias in MODEL_HELP for alias in bench.OFFICIAL_MODELS)  # --help names them without importing mlx
    arc = bench.resolve_model("official-hrm-arc")  # the data set the table size: a placeholder, said in a note
    assert arc.config["num_puzzle_identifiers"] == 1 and "num_puzzle_identifiers" in arc.notes[0]


def test_an_unknown_model_is_explained_without_naming_a_command_line_option():
    with raises_one_line("unknown recipe 'nope'; a benchmarked model is a recipe") as error:
        bench.resolve_model("nope")
    assert "official-hrm-sudoku" in str(error.value) and " --" not in str(error.value)


@pytest.mark.slow
def test_flare_scaling_table_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "p.png"
    result = runner.invoke(app, ["bench", "--model", str(tiny_recipe(tmp_path)), "--batch", "2", "--trials", "1",
                                 "--no-precision", "--no-train", "--no-recipes", "--no-first-answer", "--flare",
                                 "--flare-max-tokens", "2048",
                                 "--plot", str(plot), "--out", str(tmp_path / "b.json")])
    assert result.exit_code == 0, result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads((tmp_path / "b.json").read_text())["flare"]["rows"]
    assert [r["n"] for r in rows] == [1024] and rows[0]["flare_ms"] > 0
    assert flare_bench.table_row(rows[0]).split("|")[0].strip() == "1,024"
    assert flare_bench.TABLE_HEADER.splitlines()[0] in result.output
    assert flare_bench.token_counts(16384) == (1024, 4096, 16384)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "hrm_mlx", "bench", *args], capture_output=True, text=True)


@pytest.mark.slow
def test_bad_options_are_one_line_errors(tmp_path):
    bad = cli("--model", "nope")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hrm-mlx: error: unknown recipe 'nope'")
    assert "official-hrm-sudoku" in lines[0] and "model folder" in lines[0]
    missing = cli("--model", str(tmp_path / "absent" / "model"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    plot_alone = cli("--model", "maze-cpu", "--plot", str(tmp_path / "p.png"))
    assert plot_alone.returncode == 2 and "--flare" in plot_alone.stderr and "Traceback" not in plot_alone.stderr
