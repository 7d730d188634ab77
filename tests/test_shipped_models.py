"""The shipped models (weights/<task>/, installed as hrm_mlx.weights) solve held-out generated puzzles and the
examples through `hrm-mlx solve` with no --model, every answer checked by the task's checker."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hrm_mlx import io
from hrm_mlx.solve import shipped_model
from hrm_mlx.tasks import maze, sudoku

EXAMPLES = Path(__file__).parent.parent / "examples"
SEED = 20261124  # not a training seed: these puzzles are held out


def solve(*args):
    result = subprocess.run([sys.executable, "-m", "hrm_mlx", "solve", *args], capture_output=True, text=True,
                            timeout=600, env={**os.environ, "COLUMNS": "120"})
    assert "Traceback" not in result.stderr, result.stderr
    return result


def solve_jsonl(tmp_path, lines: list[dict]) -> list[dict]:
    path = tmp_path / "puzzles.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = solve(str(path), "--json")
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert "summary" in records.pop()  # the last record sums the run up
    assert len(records) == len(lines), result.stderr
    return records


@pytest.mark.parametrize("task", ["sudoku", "maze"])
def test_each_shipped_model_loads_with_its_task_and_a_model_card(task):
    folder = shipped_model(task)
    model, config = io.load(folder)
    assert config["task"]["name"] == task
    card = (folder / "README.md").read_text()
    for fact in ("Family", "Token mixer", "parameters", "hrm-mlx train", "## Accuracy", "held-out"):
        assert fact in card, fact


def solved_sudokus(tmp_path, pairs) -> int:
    """How many of the (puzzle, solution) pairs `hrm-mlx solve` answers correctly, by our own check of the printed
    answers (not the CLI's verdict, which must agree)."""
    records = solve_jsonl(tmp_path, [{"task": "sudoku", "grid": sudoku.to_text(p, compact=True)} for p, _ in pairs])
    solved = 0
    for (puzzle, solution), record in zip(pairs, records):
        answer = np.array([int(c) for c in record["answer"] if c.isdigit()]).reshape(9, 9)
        ok, _ = sudoku.check(puzzle, answer)
        assert ok == record["solved"]
        solved += ok
        if ok:
            np.testing.assert_array_equal(answer, solution)  # unique solutions
    return solved


@pytest.mark.slow
def test_shipped_sudoku_model_solves_held_out_puzzles_with_30_or_more_givens(tmp_path):
    solved = solved_sudokus(tmp_path, sudoku.generate(24, np.random.default_rng(SEED), givens=(30, 45)))
    assert solved >= 21, f"{solved} / 24"


@pytest.mark.slow
def test_shipped_sudoku_model_solves_most_hard_held_out_puzzles(tmp_path):
    """22-24 givens, where the puzzle alone is solved about one time in five: the symmetric copies' vote and
    thinking until the answer is stable are what `hrm-mlx solve` does by default."""
    solved = solved_sudokus(tmp_path, sudoku.generate(12, np.random.default_rng([SEED, 1]), givens=(22, 24)))
    assert solved >= 9, f"{solved} / 12"


@pytest.mark.slow
def test_shipped_maze_model_finds_shortest_paths_on_held_out_mazes(tmp_path):
    pairs = maze.generate(24, np.random.default_rng(SEED), size=(5, 15), loop_fraction=0.15, min_path=4,
                          canvas=15)
    records = solve_jsonl(tmp_path, [{"task": "maze", "grid": maze.to_text(m).split("\n")} for m, _ in pairs])
    solved = 0
    for (puzzle, _), record in zip(pairs, records):
        printed = maze.parse(record["answer"])[0]  # an answer grid: the 'o' cells are its path
        answer = printed.solution if printed.solution is not None else printed.grid
        ok, _ = maze.check(puzzle, answer)  # our own check of the printed answer, not the CLI's verdict
        assert ok == record["solved"]
        solved += ok
    assert solved >= 20, f"{solved} / 24"


@pytest.mark.slow
@pytest.mark.parametrize("example", ["sudoku.txt", "maze.txt", "sudoku.json", "maze-15.txt"])
def test_examples_are_solved_by_the_shipped_models(example):
    result = solve(str(EXAMPLES / example))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not solved" not in result.stdout and "solved" in result.stdout


@pytest.mark.slow
def test_a_task_without_a_shipped_model_asks_for_one(tmp_path):
    task = tmp_path / "task.json"
    task.write_text(json.dumps({"train": [{"input": [[1, 2]], "output": [[2, 1]]}], "test": [{"input": [[3, 4]]}]}))
    result = solve(str(task))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no shipped model for task 'arc'" in result.stderr
