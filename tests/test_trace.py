"""Watching a model think: ``solve --trace`` keeps every ACT step's answer, ``--animate`` draws the steps (GIF and
HTML), ``--watch`` redraws them live. The frames are checked for content: the last frame is the answer, the
highlighted cells are exactly the cells that changed, colours and digits are the grid's."""

from __future__ import annotations

import json
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest
from PIL import Image, ImageColor, ImageSequence
from typer.testing import CliRunner

from hrm_mlx import animate, io, solve as solver, tasks
from hrm_mlx.cli.main import _register, app
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import build
from hrm_mlx.tasks import arc, maze

EXAMPLES = Path(__file__).parent.parent / "examples"
_register()
runner = CliRunner()


def shipped(task: str, example: str):
    model, config = io.load(solver.shipped_model(task))
    puzzle = tasks.get(task).parse((EXAMPLES / example).read_text())[0]
    return model, config, puzzle


@pytest.fixture(scope="module")
def maze_run():
    model, config, puzzle = shipped("maze", "maze-15.txt")
    [solution] = solver.solve(model, config, [puzzle], max_steps=10, stop="never", trace=True)
    return puzzle, solution


@pytest.fixture(scope="module")
def sudoku_run():
    model, config, puzzle = shipped("sudoku", "sudoku.txt")
    [solution] = solver.solve(model, config, [puzzle], trace=True, num_aug=1)  # the puzzle alone: no vote
    return puzzle, solution


@pytest.mark.slow
def test_with_copies_voting_the_trace_follows_the_puzzle_itself():
    model, config, puzzle = shipped("sudoku", "sudoku.txt")
    [alone] = solver.solve(model, config, [puzzle], trace=True, num_aug=1)
    [voted] = solver.solve(model, config, [puzzle], trace=True, num_aug=4)
    assert [np.asarray(s.answer).tolist() for s in voted.trace] == [np.asarray(s.answer).tolist() for s in alone.trace]
    assert len(voted.trace) <= voted.steps  # the answer is the vote of versions that may think longer


@pytest.mark.parametrize("task", ["maze", "sudoku"])
def test_trace_holds_every_step_and_its_verdict(task, maze_run, sudoku_run):
    puzzle, solution = maze_run if task == "maze" else sudoku_run
    module = tasks.get(task)
    trace = solution.trace
    assert [s.step for s in trace] == list(range(1, solution.steps + 1))
    assert np.array_equal(trace[-1].answer, solution.answer)  # the answer is the last step's
    assert [round(s.halt_confidence, 6) for s in trace] == [round(c, 6) for c in solution.halt_confidence]
    before = module.decode(module.encode(puzzle, **({"canvas": 15} if task == "maze" else {})), puzzle)
    for step in trace:
        diff = {(int(r), int(c)) for r, c in np.argwhere(np.asarray(before) != step.answer)}
        assert set(step.changed) == diff  # step 1 against the puzzle's input, then step to step
        assert (step.solved, step.reason) == module.check(puzzle, step.answer)
        assert step.cell_confidence.shape == step.answer.shape
        assert ((step.cell_confidence > 0) & (step.cell_confidence <= 1.0 + 1e-6)).all()
        before = step.answer
    assert trace[0].changed and not trace[-1].changed and trace[-1].solved == solution.solved
    if task == "sudoku":  # a model trained without loss on the givens: they are copied, with confidence 1
        givens = np.asarray(puzzle.grid) > 0
        assert (trace[0].cell_confidence[givens] == 1.0).all()


def colour_at(picture: Image.Image, cell: int, r: int, c: int, dx: int, dy: int) -> tuple:
    return picture.getpixel((c * cell + dx, r * cell + dy))


def test_maze_frames_show_the_path_and_mark_the_changed_cells(maze_run, tmp_path):
    puzzle, solution = maze_run
    frames = animate.frames("maze", puzzle, solution.trace)
    assert len(frames) == len(solution.trace) and frames[-1].caption.startswith(f"step {solution.steps}/")
    codes = {ImageColor.getrgb(colour): code for code, colour in maze.COLOURS.items()}
    for frame, step in zip(frames, solution.trace):
        picture = animate.image(frame, cell=20)
        seen = np.array([[codes[colour_at(picture, 20, r, c, 10, 10)] for c in range(15)] for r in range(15)])
        assert np.array_equal(seen, step.answer)  # every frame shows its step's grid; the last one the answer
        marked = {(r, c) for r in range(15) for c in range(15) if colour_at(picture, 20, r, c, 1, 10) == (214, 39, 40)}
        assert marked == set(step.changed)
    assert "solved" in frames[-1].caption and f"halt {solution.halt_confidence[-1]:.2f}" in frames[-1].caption
    gif = animate.write(tmp_path / "maze.gif", frames)
    with Image.open(gif) as opened:
        assert sum(1 for _ in ImageSequence.Iterator(opened)) == len(frames)
    page = animate.write(tmp_path / "maze.html", frames).read_text()
    assert page.count('<div class="frame">') == len(frames) and 'type="range"' in page and "http" not in \
        page.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch: works offline


def test_sudoku_frames_separate_givens_digits_and_changes(sudoku_run):
    puzzle, solution = sudoku_run
    frames = animate.frames("sudoku", puzzle, solution.trace)
    givens = np.asarray(puzzle.grid)
    for frame, step in zip(frames, solution.trace):
        digits = np.array([[int(cell.text or 0) for cell in row] for row in frame.cells])
        assert np.array_equal(digits, np.where(givens > 0, givens, step.answer))
        picture = animate.image(frame, cell=30)
        for r in range(9):
            for c in range(9):
                fill = colour_at(picture, 30, r, c, 4, 4)
                want = animate.GIVEN if givens[r, c] else animate.CHANGED if (r, c) in step.changed else animate.FILLED
                assert fill == ImageColor.getrgb(want), (step.step, r, c)
    assert np.array_equal(digits, solution.answer)


def test_arc_trace_follows_the_unaugmented_first_test_input(tmp_path):
    names = ["<blank>", "abc123", arc.augmented_name("abc123", arc.ArcAugmentation(1, tuple(range(10))))]
    config = dict(family="hrm", seq_len=900, vocab_size=arc.VOCAB_SIZE, num_puzzle_identifiers=3, H_cycles=1,
                  L_cycles=1, H_layers=1, L_layers=1, hidden_size=32, expansion=2, num_heads=2, pos_encodings="rope",
                  halt_max_steps=3, halt_exploration_prob=0.1, puzzle_emb_ndim=32, forward_dtype="float32",
                  task={"name": "arc", "canvas": 30})
    mx.random.seed(0)  # random weights whose answer is a grid (some seeds crop an empty one)
    model = build(config)
    task = {"train": [{"input": [[1, 2], [3, 4]], "output": [[4, 3], [2, 1]]}],
            "test": [{"input": [[5, 0], [0, 6]], "output": [[6, 0], [0, 5]]}]}
    [puzzle] = arc.parse(json.dumps({"abc123": task}))
    [solution] = solver.solve(model, config, [puzzle], identifiers=names, trace=True)
    trace = solution.trace
    assert [s.step for s in trace] == [1, 2, 3] and all(s.solved is not None for s in trace)
    frames = animate.frames("arc", puzzle, trace)
    palette = [ImageColor.getrgb(c) for c in arc.PALETTE]
    picture = animate.image(frames[-1], cell=20)
    height, width = trace[-1].answer.shape
    seen = [[palette.index(colour_at(picture, 20, r, c, 10, 10)) for c in range(width)] for r in range(height)]
    assert np.array_equal(seen, trace[-1].answer)


def test_cli_trace_json_animate_and_watch(tmp_path):
    maze_file = EXAMPLES / "maze.txt"
    result = runner.invoke(app, ["solve", str(maze_file), "--trace", "--json", "--animate", str(tmp_path / "m.html")])
    assert result.exit_code == 0, result.output
    record = json.loads([line for line in result.output.splitlines() if line.startswith("{")][0])
    steps = record["trace"]
    assert len(steps) == record["steps"]
    assert tasks.get("maze").to_text(np.array(steps[-1]["grid"])) == record["answer"]  # the last step is the answer
    assert {"grid", "changed", "cell_confidence", "halt_confidence", "solved", "reason"} <= steps[0].keys()
    assert (tmp_path / "m.html").read_text().count('<div class="frame">') == len(steps)
    watched = runner.invoke(app, ["solve", str(maze_file), "--watch"])
    assert watched.exit_code == 0 and "solved after" in watched.output, watched.output
    bad = runner.invoke(app, ["solve", str(maze_file), "--animate", str(tmp_path / "m.png")])
    assert isinstance(bad.exception, HrmMlxError) and "write a .gif or an .html file" in str(bad.exception)
