"""Mini Sudoku (4x4 with 2x2 boxes, 6x6 with 2x3 boxes): a task of its own made of the Sudoku task's rules, from
puzzle files through data, a trained model and hrm-mlx solve."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from hrm_mlx import data, io, tasks
from hrm_mlx import train as training
from hrm_mlx.cli.main import _register, app
from hrm_mlx.tasks import sudoku
from user_errors import raises_one_line

_register()
MINI = tasks.get("mini-sudoku")
FOUR = "1.3.\n..1.\n.1..\n3...\n"  # rows of a 4x4 puzzle ('.' = blank)
SIX = "1..4..\n..4..1\n.1....\n....2.\n4..1..\n..2..4\n"


def test_reads_4x4_and_6x6_grids_and_tells_them_from_9x9():
    four, six = MINI.parse(FOUR + "\n" + SIX)
    assert four.grid.shape == (4, 4) and six.grid.shape == (6, 6) and four.grid[0, 2] == 3
    assert MINI.parse("".join(FOUR.split()))[0].grid.tolist() == four.grid.tolist()  # 16 characters on one line
    assert MINI.parse(json.dumps({"task": "mini-sudoku", "grid": six.grid.tolist()}))[0].grid.shape == (6, 6)
    assert tasks.detect(FOUR, "p.txt") is MINI and tasks.detect(SIX) is MINI
    nine = sudoku.to_text(sudoku.generate(1, np.random.default_rng(0), givens=40)[0][0])
    assert tasks.detect(nine) is sudoku.TASK  # each task reads only its own sides
    with raises_one_line(r"a grid row \(4 or 6 cells\) or a whole puzzle \(16 or 36\)"):
        MINI.parse("12345\n")
    with raises_one_line("task is 'sudoku', not 'mini-sudoku'"):
        MINI.parse(json.dumps({"task": "sudoku", "grid": four.grid.tolist()}))


def test_rules_of_both_sides():
    for side in (4, 6):
        puzzle, solution = sudoku.generate(1, np.random.default_rng(side), givens=sudoku.MINI_GIVENS[side],
                                           side=side)[0]
        assert sudoku.check(puzzle, solution) == (True, "solved")
        assert sudoku.count_solutions(puzzle) == 1 and np.array_equal(sudoku.solve(puzzle), solution)
        latin = (np.add.outer(np.arange(side), np.arange(side)) % side + 1).astype(np.int8)  # rows, columns fine
        assert sudoku.check(sudoku.SudokuPuzzle(np.zeros_like(latin)), latin) == (False, "box 1 has 2 2s")
    with raises_one_line("the givens conflict: box 1 has 2 1s"):
        MINI.validate(sudoku.SudokuPuzzle([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]))
    with raises_one_line("a sudoku grid is 6x6, got 4x4"):
        MINI.validate(MINI.parse(FOUR)[0], **MINI.options({"name": "mini-sudoku", "size": 6}))
    with raises_one_line("holds the digits 1-4, not 6"):
        MINI.validate(sudoku.SudokuPuzzle([[6, 0, 0, 0]] + [[0] * 4] * 3))


@pytest.mark.parametrize("side", [4, 6])
def test_generator_and_augmentation_keep_puzzles_valid(side):
    rng = np.random.default_rng(1)
    inputs, labels = sudoku.generate_batch(12, rng, givens=sudoku.MINI_GIVENS[side], side=side)
    assert inputs.shape == (12, side * side) and labels.max() <= side + 1
    givens = (inputs != sudoku.BLANK_TOKEN).sum(1)
    assert ((sudoku.MINI_GIVENS[side][0] <= givens) & (givens <= sudoku.MINI_GIVENS[side][1])).all()
    moved_x, moved_y, transforms = sudoku.augment(inputs, labels, rng)
    for x, y in zip(moved_x, moved_y):
        puzzle = sudoku.SudokuPuzzle(sudoku.decode(x))
        assert sudoku.check(puzzle, sudoku.decode(y)) == (True, "solved")  # still a sudoku of the same boxes
    np.testing.assert_array_equal(sudoku.invert_augmentation(moved_x, transforms), inputs)


def test_data_settings_and_the_data_set():
    assert training.resolve_config(training.load_recipe("mini-sudoku")).train.data.size == 4
    with raises_one_line("size must be one of 4 or 6, not 5"):
        data.resolve("mini-sudoku", {"size": 5})
    with raises_one_line("givens must lie in 4..16"):
        data.resolve("mini-sudoku", {"size": 4, "givens": 20})
    with raises_one_line("unknown data setting 'min_difficulty'"):
        data.resolve("mini-sudoku", {"min_difficulty": 3})  # an option of the 9x9 task's official CSV


@pytest.mark.slow
def test_a_trained_model_solves_through_the_command_line(tmp_path):
    """A few steps of the recipe's model on 4x4 puzzles: the model folder records the side, solve reads it."""
    config = training.resolve_config(training.load_recipe("mini-sudoku"), [
        "train.data.size=4", "train.data.n_train=64", "train.data.n_test=16", "train.steps=3", "train.eval_every=3",
        "train.global_batch_size=16", "model.hidden_size=16", "model.puzzle_emb_ndim=16", "model.num_heads=2"])
    summary = training.train(config, tmp_path / "run", cache_dir=tmp_path / "data")  # the recipe's grid-mask mixer
    model, saved = io.load(summary.model_dir)
    assert saved["task"] == {"name": "mini-sudoku", "supervise": "free", "size": 4}
    assert saved["seq_len"] == 16 and saved["vocab_size"] == MINI.vocab_size == 8
    (tmp_path / "p.txt").write_text(FOUR)
    result = CliRunner().invoke(app, ["solve", str(tmp_path / "p.txt"), "--model", str(summary.model_dir),
                                      "--json"])
    record = json.loads(result.stdout.splitlines()[0])  # notes (several solutions) go to stderr
    assert result.exit_code == (0 if record["solved"] else 1), result.output  # 1: the answer failed its check
    assert record["task"] == "mini-sudoku" and len(record["answer"].split()) == 4
    (tmp_path / "six.txt").write_text(SIX)
    result = CliRunner().invoke(app, ["solve", str(tmp_path / "six.txt"), "--model", str(summary.model_dir)])
    assert result.exit_code == 2 and "is 4x4, got 6x6" in result.output
