"""Hostile and random inputs through every task's parser and through `hrm-mlx solve`: whatever comes in, the answer
is puzzles or a one-line error (HrmMlxError; exit code 2 from the command line), never a traceback.

Hypothesis draws the inputs: random text over the symbols the formats use, valid files of every format mutated
(characters changed, cut, repeated, inserted), random JSON shaped like the formats, and JSON nested deeper than
Python recurses. The runs are bounded (a fixed number of examples, derandomized so CI sees the same inputs) and
take about a minute."""

import json
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from hrm_mlx import io, tasks
from hrm_mlx import solve as pipeline
from hrm_mlx.cli.main import _register, app
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import build
from hrm_mlx.tasks import arc, maze, sudoku
from test_solve import tiny_config

_register()
runner = CliRunner()

BOUNDED = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

_SUDOKU = sudoku.generate(2, np.random.default_rng(0), givens=30)
_MAZES = maze.generate(2, np.random.default_rng(0), size=(5, 9), canvas=9)
_ARC_TASK = {"train": [{"input": [[1, 0], [0, 2]], "output": [[2, 0], [0, 1]]}], "test": [{"input": [[5, 0]]}]}
SEEDS = [
    sudoku.to_text(_SUDOKU[0][0], compact=True) + "\n" + sudoku.to_text(_SUDOKU[1][0], compact=True),
    "\n".join(r[:3] + "|" + r[3:6] + "|" + r[6:] for r in sudoku.to_text(_SUDOKU[0][0]).splitlines()),
    json.dumps([{"task": "sudoku", "grid": _SUDOKU[0][0].grid.tolist(), "id": "s1"}]),
    "source,question,answer\nx," + sudoku.to_text(_SUDOKU[0][0], compact=True) + ","
    + sudoku.to_text(_SUDOKU[0][1], compact=True) + "\n",
    maze.to_text(_MAZES[0][0]) + "\n\n" + maze.to_text(_MAZES[1][1]),
    maze.to_text(_MAZES[0][0], compact=True),
    json.dumps({"task": "maze", "grid": maze.to_text(_MAZES[0][0]).splitlines()}) + "\n"
    + json.dumps({"task": "maze", "grid": maze.to_text(_MAZES[1][0], compact=True)}),
    "source,question\nm," + maze.to_text(_MAZES[0][0], compact=True) + "\n",
    json.dumps(_ARC_TASK),
    json.dumps({"abc123": _ARC_TASK, "def456": _ARC_TASK}),
    json.dumps([dict(_ARC_TASK, id="t1")]),
]
SYMBOLS = "#SGo .0123456789|+-_*\n\r\t{}[]\":,xyz"
KEYS = ["train", "test", "input", "output", "grid", "maze", "puzzle", "question", "answer", "solution", "task", "id",
        "name", "source", "abc123"]


@st.composite
def mutated(draw):
    """A valid file of some format, then a few characters changed, cut, repeated or inserted."""
    text = list(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.integers(0, len(text)))
        operation = draw(st.sampled_from(["change", "cut", "repeat", "insert"]))
        if operation == "change" and text:
            text[min(where, len(text) - 1)] = draw(st.sampled_from(SYMBOLS + "é\x00"))
        elif operation == "cut":
            del text[where:where + draw(st.integers(1, 40))]
        elif operation == "repeat":
            text[where:where] = text[where:where + draw(st.integers(1, 40))]
        else:
            text[where:where] = draw(st.text(SYMBOLS, max_size=12))
    return "".join(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 12) | st.floats(allow_nan=False) | st.text(SYMBOLS, max_size=12),
    lambda inner: st.lists(inner, max_size=10) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=60)

inputs = st.one_of(
    mutated(),
    st.text(SYMBOLS, max_size=300),
    st.text(string.printable, max_size=200),
    json_values.map(json.dumps),
    st.integers(1, 4000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 4000).map(lambda depth: '{"grid": ' * depth + "1" + "}" * depth),
)


def user_error_only(call):
    """Run ``call``: a result or an HrmMlxError with a one-line message are fine, anything else is a bug."""
    try:
        return call()
    except HrmMlxError as error:
        assert "\n" not in str(error), str(error)
        return None


@pytest.mark.slow  # about a minute
@settings(BOUNDED, max_examples=600)
@given(text=inputs, filename=st.sampled_from(["p.txt", "p.json", "p.csv", "p.jsonl", "p", "007bbfb7.json"]))
def test_every_parser_takes_any_input(text, filename):
    options = {"sudoku": {}, "maze": {"canvas": 30}, "arc": {"canvas": 30}}
    user_error_only(lambda: tasks.detect(text, filename))
    for task in tasks.all_tasks():
        puzzles = user_error_only(lambda: task.parse_file(text, filename.split(".")[0])) or []
        for puzzle in puzzles:
            if user_error_only(lambda: task.validate(puzzle, **options.get(task.name, {})) or True):
                task.encode(puzzle, **options.get(task.name, {}))
                task.to_text(puzzle)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny random models of every task (fast: the pipeline is what is tested)."""
    root = tmp_path_factory.mktemp("fuzz-models")
    folders = {}
    for name, task_block, seq_len, vocab in (("sudoku", {"name": "sudoku"}, 81, sudoku.VOCAB_SIZE),
                                             ("maze", {"name": "maze", "canvas": 9}, 81, maze.VOCAB_SIZE),
                                             ("arc", {"name": "arc", "canvas": 30}, 900, arc.VOCAB_SIZE)):
        config = dict(tiny_config(task_block, seq_len, vocab), halt_max_steps=1)
        names = ["<blank>", "abc123", "007bbfb7"] if name == "arc" else None
        if names:
            config["num_puzzle_identifiers"] = len(names)
        io.save(build(config), config, root / name, identifiers=names)
        folders[name] = root / name
    return folders


@pytest.mark.slow
@settings(BOUNDED, max_examples=80)
@given(text=inputs, suffix=st.sampled_from([".txt", ".json", ".csv", ".jsonl", ""]),
       model=st.sampled_from(["sudoku", "maze", "arc"]), named=st.booleans())
def test_solve_never_shows_a_traceback(tmp_path, monkeypatch, models, text, suffix, model, named):
    monkeypatch.setattr(pipeline, "PART", 64)  # inputs above 128 characters go the streaming way
    monkeypatch.setattr(pipeline, "STREAM_ABOVE", 128)
    path = tmp_path / f"007bbfb7{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    args = ["solve", str(path), "--model", str(models[model]), "--json", "--max-steps", "1", "--num-aug", "1"]
    result = runner.invoke(app, args + (["--task", model] if named else []))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, HrmMlxError), (text, result.exception)
        assert "\n" not in str(result.exception)
    else:
        assert result.exit_code in (0, 1, 2), result.output
        if result.exit_code != 2:
            assert json.loads(result.stdout.splitlines()[-1])["summary"]["errors"] == 0
