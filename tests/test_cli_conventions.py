"""What every command promises a script and a user: exit codes (0 all answers passed their check, 1 some failed,
2 bad input or usage, 130 interrupted), --json on stdout and --out FILE, help text, --version, and the rough edges
a new user met (a run folder as --model, a missing TMPDIR, large and streamed inputs)."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from hrm_mlx import io
from hrm_mlx import solve as pipeline
from hrm_mlx.cli.main import _register, app
from hrm_mlx.models import build
from hrm_mlx.tasks import maze, sudoku
from test_solve import MAZE, answers, maze_model, sudoku_model, tiny_config  # noqa: F401 (models: fixtures)
from user_errors import assert_one_line_error

_register()
runner = CliRunner()
COMMANDS = ("solve", "doctor", "bench", "convert", "train", "eval", "upload")


def cli(*args, input=None, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "hrm_mlx", *map(str, args)], capture_output=True, text=True,
                          input=input, env={**os.environ, **(env or {})}, timeout=600, **kwargs)


def sudoku_lines(n: int, seed: int = 0) -> list[str]:
    return [sudoku.to_text(p, compact=True) for p, _ in sudoku.generate(n, np.random.default_rng(seed), givens=40)]


def records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# -- help and version -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_version_and_help_words():
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("hrm-mlx 0.")
    top = cli("--help")
    assert "Exit codes" in top.stdout and "130 = interrupted" in top.stdout and "--json" in top.stdout
    for command in COMMANDS:
        shown = cli(command, "--help")
        assert shown.returncode == 0, shown.stderr
        for python_type in ("<bool>", "<str>", "<int", "<path>", "<list[", "<float"):
            assert python_type not in shown.stdout, (command, python_type, shown.stdout)
        assert "Exit codes" in shown.stdout
    solve_help = cli("solve", "--help").stdout
    assert "--max-steps N" in solve_help and "4x the trained steps" in solve_help
    assert "--json" in solve_help and "--out FILE" in solve_help and "--limit N" in solve_help


def test_list_recipes_keeps_each_recipe_apart():
    listed = cli("train", "--list-recipes").stdout
    paragraphs = [block for block in listed.split("\n\n") if block.strip()]
    assert len(paragraphs) >= 10 and all(len(block.strip().splitlines()[0].split()) == 1 for block in paragraphs)


@pytest.mark.slow
def test_lines_are_not_wrapped_and_digits_in_paths_not_coloured(tmp_path, maze_model):
    path = tmp_path / "run-2026" / "maze-15.txt"
    path.parent.mkdir()
    path.write_text(MAZE)
    result = cli("solve", path, "--model", maze_model, "--max-steps", "30", "--stop", "never",
                 env={"FORCE_COLOR": "1", "COLUMNS": "80"})  # colours as on a terminal
    assert result.returncode == 1, result.stderr
    assert str(path) in result.stdout  # no colour codes around the digits inside the path
    [line] = [line for line in result.stdout.splitlines() if "halting confidence per step:" in line]
    assert len(re.findall(r"\d\.\d\d", line.split("per step:")[1])) == 30  # 30 steps on one line, not wrapped


# -- doctor and the environment ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", ["-5", "0", "10"])
def test_doctor_refuses_sizes_too_small_to_measure(size):
    result = cli("doctor", "--size", size)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "--size" in result.stderr


@pytest.mark.slow
def test_doctor_json_on_stdout_and_out_file(tmp_path):
    result = cli("doctor", "--size", "128", "--json", "--out", tmp_path / "d.json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["sgemm_gflops"] > 0 and json.loads((tmp_path / "d.json").read_text()) == printed
    table = cli("doctor", "--size", "128", "--out", tmp_path / "e.json")
    assert "hrm-mlx doctor" in table.stdout and json.loads((tmp_path / "e.json").read_text())["mlx"]


def test_a_missing_tmpdir_is_a_one_line_error(tmp_path):
    result = cli("doctor", "--size", "128", env={"TMPDIR": str(tmp_path / "gone")})
    assert_one_line_error(result.returncode, result.stderr, "TMPDIR=")
    assert "does not exist" in result.stderr or "is not a folder" in result.stderr


# -- solve: exit codes, JSON, streaming ----------------------------------------------------------------------------


@pytest.mark.slow
def test_solve_exit_codes_and_a_summary_record(tmp_path, sudoku_model):
    easy = tmp_path / "easy.txt"
    easy.write_text(sudoku_lines(1)[0])
    solved = cli("solve", easy, "--json")  # the shipped model solves a 40-given Sudoku
    assert solved.returncode == 0, solved.stderr
    *puzzles, last = records(solved.stdout)
    assert puzzles[0]["solved"] and last["summary"]["exit_code"] == 0 and last["summary"]["solved"] == 1
    failed = cli("solve", easy, "--model", sudoku_model, "--json")  # a random model's answer fails its check
    assert failed.returncode == 1 and records(failed.stdout)[-1]["summary"]["not_solved"] == 1
    (tmp_path / "bad.txt").write_text("1" * 80)
    batch = cli("solve", easy, tmp_path / "bad.txt", "--json")  # bad input wins over answers that passed
    summary = records(batch.stdout)[-1]["summary"]
    assert batch.returncode == 2 and summary["errors"] == 1 and summary["solved"] == 1
    assert any(record.get("error") for record in records(batch.stdout))


@pytest.mark.slow
def test_json_lines_are_flushed_as_answers_come_and_out_keeps_them_when_interrupted(tmp_path, sudoku_model):
    puzzles = tmp_path / "many.txt"
    puzzles.write_text("\n".join(sudoku_lines(40) * 100))
    out = tmp_path / "results.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "hrm_mlx", "solve", str(puzzles), "--model", str(sudoku_model),
                             "--json", "--out", str(out), "--batch-size", "8"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # a line arrives long before the 4,000 puzzles are done
    assert json.loads(first)["source"] == f"{puzzles}#1"
    proc.send_signal(signal.SIGTERM)  # what `timeout` sends; Ctrl-C ends it the same way
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    kept = records(out.read_text())
    assert 1 <= len(kept) < 4000 and kept[0] == json.loads(first)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".results")]  # no temporary file left


@pytest.mark.slow
def test_limit_stdin_and_the_list_of_failures(tmp_path, sudoku_model):
    text = "\n".join(sudoku_lines(8))
    result = runner.invoke(app, ["solve", "-", "--model", str(sudoku_model), "--limit", "6"], input=text)
    assert result.exit_code == 1, result.output
    assert "0 / 6" in result.output
    # more than four puzzles: no pictures, but the summary names what failed
    assert "not solved: stdin#1, stdin#2, stdin#3, stdin#4, stdin#5, stdin#6" in result.output
    listed = runner.invoke(app, ["solve", "-", "--model", str(sudoku_model), "--json"], input=text)
    assert [r["source"] for r in answers(listed.output)] == [f"stdin#{n}" for n in range(1, 9)]


@pytest.mark.slow
def test_csv_rows_take_their_source_names_and_a_folder_takes_what_naming_takes(tmp_path, sudoku_model):
    lines = sudoku_lines(3)
    folder = tmp_path / "p"
    (folder / ".hidden").mkdir(parents=True)
    (folder / "rows.csv").write_text("source,question\n" + "".join(f"puzzle-{n},{q}\n" for n, q in enumerate(lines)))
    (folder / "one.sdk").write_text(lines[0])  # a Sudoku extension
    (folder / "two.dat").write_text(lines[1])  # no puzzle extension, but a puzzle: named directly it is solved
    (folder / "notes.md").write_text("# notes\nnot a puzzle")  # skipped, as it has no puzzle extension
    (folder / ".hidden" / "x.txt").write_text(lines[2])
    result = runner.invoke(app, ["solve", str(folder), "--model", str(sudoku_model), "--json"])
    sources = [r["source"] for r in answers(result.output)]
    assert result.exit_code == 1, result.output
    assert sources == [str(folder / "one.sdk"), f"{folder / 'rows.csv'}#1 (puzzle-0)",
                       f"{folder / 'rows.csv'}#2 (puzzle-1)", f"{folder / 'rows.csv'}#3 (puzzle-2)",
                       str(folder / "two.dat")]
    direct = runner.invoke(app, ["solve", str(folder / "two.dat"), "--model", str(sudoku_model), "--json"])
    assert [r["source"] for r in answers(direct.output)] == [str(folder / "two.dat")]


@pytest.mark.slow
def test_a_large_input_is_solved_as_it_is_read(tmp_path, monkeypatch, sudoku_model):
    monkeypatch.setattr(pipeline, "PART", 2_000)
    monkeypatch.setattr(pipeline, "STREAM_ABOVE", 4_000)
    monkeypatch.setattr(pipeline, "CHUNK_BATCHES", 1)
    lines = sudoku_lines(10) * 10
    lines[80 - 2] = "x" + lines[0][1:]  # a bad puzzle on line 80 (line 1 is the CSV header)
    path = tmp_path / "big.csv"
    path.write_text("source,question\n" + "".join(f"s{n},{q}\n" for n, q in enumerate(lines)))
    events = []
    read = pipeline._Input.read

    def logged_read(self, size=-1):
        text = read(self, size)
        events.append(("read", len(text)))
        return text

    monkeypatch.setattr(pipeline._Input, "read", logged_read)

    class Log(pipeline.SolveCallback):
        def on_result(self, result):
            events.append(("result", result.source, result.error))

    [summary] = pipeline.solve_files([path], model=str(sudoku_model), batch_size=8, callback=Log())
    assert summary.count == 99
    first_answer = next(i for i, event in enumerate(events) if event[0] == "result")
    last_read = max(i for i, event in enumerate(events) if event[0] == "read")
    assert first_answer < last_read  # answers came before the file was read to its end
    [error] = [event[2] for event in events if event[0] == "result" and event[2]]
    assert "CSV line 80" in error and "unknown sudoku symbol 'x'" in error  # only it fails, named by its line
    sources = [event[1] for event in events if event[0] == "result" and not event[2]]
    assert sources[:2] == [f"{path}#1 (s0)", f"{path}#2 (s1)"] and len(set(sources)) == 99


# -- solve: models ---------------------------------------------------------------------------------------------------


def test_a_training_run_folder_serves_its_model(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"task": "maze", "model": {}, "train": {}}))
    (run / "metrics.jsonl").write_text("")
    (tmp_path / "m.txt").write_text(MAZE)
    early = runner.invoke(app, ["solve", str(tmp_path / "m.txt"), "--model", str(run)])
    assert "training run without a model yet" in str(early.exception)  # main() prints it and exits 2
    config = tiny_config({"name": "maze", "canvas": 9}, 81, maze.VOCAB_SIZE)
    io.save(build(config), config, run / "model")
    result = cli("solve", tmp_path / "m.txt", "--model", run, "--json")
    assert result.returncode == 1 and answers(result.stdout)[0]["task"] == "maze", result.stderr
    assert f"{run} is a training run: using its model {run / 'model'}" in result.stderr


def test_a_maze_beyond_the_canvas_names_the_models_that_take_it(tmp_path):
    folder = tmp_path / "attention9"
    config = tiny_config({"name": "maze", "canvas": 9}, 81, maze.VOCAB_SIZE)
    io.save(build(config), config, folder)
    (tmp_path / "big.txt").write_text((pipeline_root() / "examples" / "maze-15.txt").read_text())
    result = cli("solve", tmp_path / "big.txt", "--model", folder)
    assert_one_line_error(result.returncode, result.stderr, "15x15")
    assert "9x9" in result.stderr and "the shipped maze model" in result.stderr
    assert " --" not in result.stderr  # the library's message names no command-line option


def pipeline_root():
    from pathlib import Path

    return Path(__file__).parent.parent


def test_out_file_is_kept_when_a_command_fails_before_its_first_record(tmp_path):
    """--out FILE replaces an existing file only once there is something to write: a measurement that fails before
    its record (doctor, bench) leaves the old file as it was; one that fails later keeps the records so far."""
    from hrm_mlx.cli import output

    out = tmp_path / "doctor.json"
    out.write_text('{"old": true}\n')
    with pytest.raises(RuntimeError):
        with output.Records(False, out):
            raise RuntimeError("the measurement failed")
    assert out.read_text() == '{"old": true}\n'
    with pytest.raises(RuntimeError):
        with output.Records(False, out) as records:
            records.emit({"new": 1})
            raise RuntimeError("interrupted after one record")
    assert [json.loads(line) for line in out.read_text().splitlines()] == [{"new": 1}]
