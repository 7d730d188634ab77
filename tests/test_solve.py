"""`hrm-mlx solve` from puzzle files to checked answers: formats, options, bad input, fuzzing.

The model here is a tiny random one (the answers are wrong, the pipeline is real); tests of the shipped models
solving puzzles correctly live in test_shipped_models.py."""

import json
import random
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from hrm_mlx import io, solve as solver
from hrm_mlx.cli import solve as cli_solve
from hrm_mlx.cli.main import _register, app
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import build
from hrm_mlx.tasks import arc, maze, sudoku

_register()
runner = CliRunner()

MAZE = "#########\n#S      #\n# ##### #\n#     # #\n##### # #\n#     #G#\n# ### # #\n#       #\n#########\n"


def tiny_config(task: dict, seq_len: int, vocab: int) -> dict:
    return dict(family="hrm", seq_len=seq_len, vocab_size=vocab, num_puzzle_identifiers=1, H_cycles=1, L_cycles=1,
                H_layers=1, L_layers=1, hidden_size=32, expansion=2, num_heads=2, pos_encodings="rope",
                halt_max_steps=3, halt_exploration_prob=0.1, puzzle_emb_ndim=32, forward_dtype="float32", task=task)


@pytest.fixture(scope="module")
def maze_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "maze9"
    config = tiny_config({"name": "maze", "canvas": 9}, 81, maze.VOCAB_SIZE)
    io.save(build(config), config, folder)
    return folder


@pytest.fixture(scope="module")
def sudoku_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "sudoku"
    config = tiny_config({"name": "sudoku"}, 81, sudoku.VOCAB_SIZE)
    io.save(build(config), config, folder)
    return folder


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def answers(text: str) -> list[dict]:
    """The puzzle records of --json output (the last record is the run's summary; errors have no verdict)."""
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [record for record in records if "solved" in record and "summary" not in record]


def test_solves_a_maze_file_and_reports_steps_and_halting(tmp_path, maze_model):
    (tmp_path / "m.txt").write_text(MAZE)
    result = run("solve", tmp_path / "m.txt", "--model", maze_model, "--json")
    assert result.exit_code == 1, result.output  # it ran; the random model's answer fails its check
    [record] = answers(result.output)
    budget = solver.THINK_LONGER * 3  # a random model never halts: it thinks for the whole default budget
    assert record["task"] == "maze" and record["steps"] == budget and len(record["halt_confidence"]) == budget
    assert record["solved"] is False and record["reason"]


def test_max_steps_and_stop_rules(tmp_path, maze_model):
    (tmp_path / "m.txt").write_text(MAZE)
    result = run("solve", tmp_path / "m.txt", "--model", maze_model, "--json", "--max-steps", "5", "--stop", "never")
    assert answers(result.output)[0]["steps"] == 5
    result = run("solve", tmp_path / "m.txt", "--model", maze_model, "--json", "--max-steps", "5", "--stop", "halt")
    assert 1 <= answers(result.output)[0]["steps"] <= 5
    result = run("solve", tmp_path / "m.txt", "--model", maze_model, "--stop", "sometimes")
    assert result.exit_code == 2 and "'sometimes' is not one of" in result.output and "'never'" in result.output
    assert {rule.value for rule in cli_solve.StopRule} == set(solver.STOP_RULES)


def test_halt_rule_stops_rows_where_the_halt_head_says_so(maze_model):
    model, config = io.load(maze_model)
    model.q_head.bias = model.q_head.bias * 0 + np.array([5.0, -5.0], dtype=np.float32)  # always halt at once
    inputs = np.stack([maze.encode(maze.parse(MAZE)[0], canvas=9)] * 2)
    _, steps, confidence = solver.run_act(model, inputs, np.zeros(2, np.int32), max_steps=4, stop="halt")
    assert steps.tolist() == [1, 1] and confidence.shape == (2, 1)


def test_stable_rule_waits_for_an_unchanged_answer_and_the_halt_head(maze_model):
    model, config = io.load(maze_model)
    inputs = np.stack([maze.encode(maze.parse(MAZE)[0], canvas=9)] * 2)
    ids = np.zeros(2, np.int32)
    model.lm_head.weight = model.lm_head.weight * 0  # the same answer at every step
    model.q_head.bias = model.q_head.bias * 0 + np.array([5.0, -5.0], dtype=np.float32)
    _, steps, _ = solver.run_act(model, inputs, ids, max_steps=10, stop="stable")
    assert steps.tolist() == [solver.STABLE_STEPS + 1] * 2  # the first answer, then STABLE_STEPS unchanged ones
    model.q_head.bias = model.q_head.bias * 0 + np.array([-5.0, 5.0], dtype=np.float32)  # never halts
    _, steps, confidence = solver.run_act(model, inputs, ids, max_steps=10, stop="stable")
    assert steps.tolist() == [10, 10] and confidence.shape == (2, 10)


def test_a_conv_model_runs_on_grids_larger_than_its_canvas(tmp_path):
    # No parameter of the convolution mixer depends on the grid, so a model trained on a 9x9 canvas solves a
    # 15x15 maze at its own size, with a step budget scaled by the area; an attention model keeps its canvas.
    config = dict(tiny_config({"name": "maze", "canvas": 9}, 81, maze.VOCAB_SIZE), family="trm", mixer="conv",
                  H_layers=0, puzzle_emb_len=1)
    conv = build(config)
    assert conv.runs_at_any_size and not build(tiny_config({"name": "maze", "canvas": 9}, 81, 6)).runs_at_any_size
    assert not build(dict(config, pos_encodings="learned")).runs_at_any_size
    io.save(conv, config, tmp_path / "conv9")
    big = maze.generate(1, np.random.default_rng(0), size=15, canvas=15)[0][0]
    (tmp_path / "big.txt").write_text(maze.to_text(big))
    result = run("solve", tmp_path / "big.txt", "--model", tmp_path / "conv9", "--json", "--stop", "never")
    assert result.exit_code == 1, result.output
    [record] = answers(result.output)
    assert len(record["answer"].splitlines()) == 15
    assert record["steps"] == solver.step_budget(conv, 9, 15) == solver.THINK_LONGER * 3 * 3  # (15/9)^2 -> 3x
    result = run("solve", tmp_path / "big.txt", "--model", tmp_path / "conv9", "--json", "--max-steps", "2",
                 "--stop", "never")
    assert answers(result.output)[0]["steps"] == 2
    result = run("solve", tmp_path / "big.txt", "--model", maze_model_folder(tmp_path), "--json")
    assert result.exit_code == 2 and "9x9" in result.output


def maze_model_folder(tmp_path):
    folder = tmp_path / "attention9"
    config = tiny_config({"name": "maze", "canvas": 9}, 81, maze.VOCAB_SIZE)
    io.save(build(config), config, folder)
    return folder


@pytest.mark.slow
def test_many_puzzles_in_a_folder_with_summary_and_out_file(tmp_path, sudoku_model):
    rng = np.random.default_rng(0)
    pairs = sudoku.generate(6, rng, givens=(40, 45))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.txt").write_text("\n".join(sudoku.to_text(p, compact=True) for p, _ in pairs[:4]))
    (tmp_path / "p" / "b.json").write_text(json.dumps([{"task": "sudoku", "grid": p.grid.tolist()} for p, _ in pairs[4:]]))
    out = tmp_path / "results.json"
    result = run("solve", tmp_path / "p", "--model", sudoku_model, "--batch-size", "4", "--out", out)
    assert result.exit_code == 1, result.output
    assert "summary" in result.output and "0 / 6" in result.output
    assert len(answers(out.read_text())) == 6


def test_solve_uses_task_checker_on_a_correct_answer():
    puzzle, solution = sudoku.generate(1, np.random.default_rng(1), givens=40)[0]
    assert sudoku.check(puzzle, solution) == (True, "solved")


@pytest.mark.slow
def test_a_sudoku_without_a_solution_is_bad_input_and_several_solutions_are_noted(tmp_path, sudoku_model):
    from test_task_sudoku import NO_SOLUTION, ONE_BOX_GIVEN

    (tmp_path / "none.txt").write_text(NO_SOLUTION)
    result = run("solve", tmp_path / "none.txt", "--model", sudoku_model, "--json", "--num-aug", "1")
    assert result.exit_code == 2 and "this puzzle has no solution" in result.output  # not "row 1 has 2 8s"
    assert answers(result.output) == []  # the model was not asked
    (tmp_path / "many.txt").write_text(ONE_BOX_GIVEN)
    result = run("solve", tmp_path / "many.txt", "--model", sudoku_model, "--json", "--num-aug", "1")
    [record] = answers(result.output)
    assert record["note"] == "this puzzle has 2+ solutions; any valid completion counts"
    shown = run("solve", tmp_path / "many.txt", "--model", sudoku_model, "--num-aug", "1")
    assert "note: this puzzle has 2+ solutions" in shown.output


def test_bad_puzzles_are_reported_and_the_rest_solved(tmp_path, maze_model):
    (tmp_path / "good.txt").write_text(MAZE)
    (tmp_path / "two_starts.txt").write_text(MAZE.replace("G", "S"))
    (tmp_path / "broken.json").write_text('{"task": "maze", "grid": [')
    result = run("solve", tmp_path, "--model", maze_model, "--json")
    assert result.exit_code == 2
    solved = answers(result.stdout)
    assert len(solved) == 1 and solved[0]["source"].endswith("good.txt")


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("", "empty"),
    ("hello world", "not a puzzle file"),
    ("1" * 80, "read as sudoku puzzles: line 1: found 80 cells"),  # the real reason, without --task
])
@pytest.mark.slow
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, maze_model, content, message):
    path = tmp_path / "p.txt"
    if content is not None:
        path.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "hrm_mlx", "solve", str(path), "--model", str(maze_model)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_model_for_another_task_is_refused(tmp_path, maze_model):
    grid = sudoku.to_text(sudoku.generate(1, np.random.default_rng(2), givens=40)[0][0])
    (tmp_path / "s.txt").write_text(grid)
    result = run("solve", tmp_path / "s.txt", "--model", maze_model)
    assert isinstance(result.exception, HrmMlxError) and "solves maze, not sudoku" in str(result.exception)


def test_conflicting_givens_and_oversized_maze_are_refused(tmp_path, sudoku_model, maze_model):
    row = "11" + "." * 79
    (tmp_path / "s.txt").write_text(row)
    result = run("solve", tmp_path / "s.txt", "--model", sudoku_model)
    assert result.exit_code == 2 and "conflict" in result.output.lower() or "twice" in result.output.lower()
    big = "\n".join(["#" * 11] + ["#S" + " " * 8 + "#"] + ["#" + " " * 9 + "#"] * 8 + ["#" * 9 + "G#"])
    (tmp_path / "big.txt").write_text(big)
    result = run("solve", tmp_path / "big.txt", "--model", maze_model)
    assert result.exit_code == 2


def mutations(seed: int, count: int):
    """Random and mutated puzzle texts: byte flips, truncation, duplication, odd characters, random JSON."""
    rng = random.Random(seed)
    seeds = [MAZE, sudoku.to_text(sudoku.generate(1, np.random.default_rng(seed), givens=35)[0][0]),
             json.dumps({"task": "maze", "grid": MAZE.splitlines()}), '{"train": [], "test": []}',
             "source,question,answer,rating\nx," + "." * 81 + ",,0\n"]
    alphabet = "#SGo .0123456789|+-_\n{}[]\":,xyz\t\x00é"
    for _ in range(count):
        text = list(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            op = rng.randrange(4)
            pos = rng.randrange(len(text) + 1)
            if op == 0 and text:
                text[min(pos, len(text) - 1)] = rng.choice(alphabet)
            elif op == 1:
                text = text[:pos]
            elif op == 2:
                text[pos:pos] = text[pos:pos + rng.randint(1, 20)]
            else:
                text[pos:pos] = rng.choices(alphabet, k=rng.randint(1, 10))
        yield "".join(text)


def test_fuzz_parsers_raise_only_one_line_user_errors():
    from hrm_mlx import tasks

    for text in mutations(0, 400):
        try:
            task = tasks.detect(text, "fuzz.txt")
            for puzzle in task.parse(text):
                task.validate(puzzle)
        except HrmMlxError as error:
            assert "\n" not in str(error)


@pytest.mark.slow
def test_fuzz_cli_never_shows_a_traceback(tmp_path, maze_model):
    for i, text in enumerate(mutations(1, 40)):
        path = tmp_path / f"f{i}.txt"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        result = run("solve", path, "--model", maze_model, "--json")
        assert result.exception is None or isinstance(result.exception, (HrmMlxError, SystemExit)), (
            text, result.exception)


# -- ARC: augmentation voting, Kaggle files ------------------------------------------------------------------------

ARC_TASK = {"train": [{"input": [[1, 0], [0, 2]], "output": [[2, 0], [0, 1]]},
                      {"input": [[3, 3], [0, 0]], "output": [[0, 0], [3, 3]]}],
            "test": [{"input": [[5, 0], [0, 6]]}]}


@pytest.fixture(scope="module")
def arc_model(tmp_path_factory):
    from hrm_mlx.tasks import arc

    names = ["<blank>", "abc123"] + [arc.augmented_name("abc123", arc.ArcAugmentation(t, (0, 2, 1, 3, 4, 5, 6, 7, 8, 9)))
                                     for t in (1, 4)]
    folder = tmp_path_factory.mktemp("models") / "arc"
    config = tiny_config({"name": "arc", "canvas": 30}, 900, arc.VOCAB_SIZE)
    config["num_puzzle_identifiers"] = len(names)
    io.save(build(config), config, folder, identifiers=names)
    return folder


def test_arc_task_is_solved_by_voting_over_its_trained_versions(tmp_path, arc_model):
    challenges = tmp_path / "challenges.json"
    challenges.write_text(json.dumps({"abc123": ARC_TASK, "zzz999": ARC_TASK}))
    solutions = tmp_path / "solutions.json"
    solutions.write_text(json.dumps({"abc123": [[[6, 0], [0, 5]]], "zzz999": [[[6, 0], [0, 5]]]}))
    submission = tmp_path / "submission.json"
    result = run("solve", challenges, "--model", arc_model, "--json", "--num-aug", "3",
                 "--solutions", solutions, "--submission", submission)
    assert result.exit_code == 2  # zzz999 is unknown to the model: reported, the other task still solved
    assert "zzz999" in result.output and "not in the model's training data" in result.output
    [record] = answers(result.output)
    assert record["task"] == "arc" and 1 <= len(record["attempts"][0]) <= 2
    written = json.loads(submission.read_text())
    assert set(written) == {"abc123"} and set(written["abc123"][0]) == {"attempt_1", "attempt_2"}
    assert "Kaggle score" in result.output


def test_arc_tasks_are_solved_from_python_with_their_kaggle_files(tmp_path, arc_model, capsys):
    """The pipeline is the library's: solve_files reads the challenges, votes, writes and scores the submission
    and reports each task to a typed callback, printing nothing."""
    challenges = tmp_path / "challenges.json"
    challenges.write_text(json.dumps({"abc123": ARC_TASK, "zzz999": ARC_TASK}))
    target = [[6, 0], [0, 5]]
    solutions = tmp_path / "solutions.json"
    solutions.write_text(json.dumps({"abc123": [target], "zzz999": [target]}))

    class Seen(solver.SolveCallback):
        def __init__(self):
            self.results, self.started, self.done = [], [], []

        def on_result(self, result):
            self.results.append(result)

        def on_task_start(self, task, puzzles, rows, more):
            self.started.append((task.name, [p.id for p in puzzles]))

        def on_task_done(self, summary):
            self.done.append(summary)

    seen = Seen()
    [summary] = solver.solve_files([challenges], model=str(arc_model), answers=solutions,
                                   submission=tmp_path / "submission.json", num_aug=3, callback=seen)
    assert seen.started == [("arc", ["abc123"])] and seen.done == [summary]
    [failed] = [r for r in seen.results if r.error]
    assert "zzz999" in failed.error and "not in the model's training data" in failed.error
    [solved] = [r for r in seen.results if r.solution]
    attempts = solved.solution.attempts[0]
    assert solved.task == "arc" and 1 <= len(attempts) <= 2 and (summary.task, summary.count) == ("arc", 1)
    assert json.loads((tmp_path / "submission.json").read_text()) == summary.submission
    assert set(summary.submission) == {"abc123"}
    right = float(any(np.array_equal(np.asarray(attempt), target) for attempt in attempts))
    assert [(name, score) for name, score, _ in summary.scores] == [("ARC Kaggle score", right),
                                                                     ("strict all-tests score", right)]
    assert capsys.readouterr() == ("", "")


def test_arc_versions_put_the_original_first():
    versions = arc.trained_versions(["<blank>", "t1_t3_0123456789", "t1", "t2"])
    assert versions == {"t1": [(2, "t1"), (1, "t1_t3_0123456789")], "t2": [(3, "t2")]}


# --- symmetric copies vote -------------------------------------------------------------------------------------


def test_sudoku_copies_are_puzzles_whose_answers_map_back_onto_the_puzzle():
    puzzle, solution = sudoku.generate(1, np.random.default_rng(3), givens=26)[0]
    task = sudoku.TASK
    copies = task.symmetric_copies(puzzle, 5)
    assert len(copies) == 5 and len({c.grid.tobytes() for c, _ in copies}) == 5
    for copy, back in copies:
        assert (copy.grid != 0).sum() == 26 and sudoku.count_solutions(copy.grid) == 1
        np.testing.assert_array_equal(back(sudoku.solve(copy.grid)), solution)
    again = task.symmetric_copies(puzzle, 5)  # the same puzzle gets the same copies
    assert all((a.grid == b.grid).all() for (a, _), (b, _) in zip(copies, again))


def test_maze_copies_are_its_rotations_and_reflections():
    puzzle, solution = maze.generate(1, np.random.default_rng(4), size=11, canvas=11)[0]
    copies = maze.TASK.symmetric_copies(puzzle, 20)
    assert len(copies) == 7
    for copy, back in copies:
        assert maze.shortest_path_length(copy) == maze.shortest_path_length(puzzle)
        assert maze.check(puzzle, back(maze.shortest_path(copy))) == (True, "solved")


def test_the_answer_most_versions_give_wins_and_ties_go_to_the_more_confident():
    from hrm_mlx.tasks.base import Answer

    puzzle, solution = sudoku.generate(1, np.random.default_rng(5), givens=30)[0]
    task = sudoku.TASK
    queries = task.queries(puzzle, 4)
    assert len(queries) == 4 and queries[0].item is puzzle and queries[0].tag is None
    wrong = solution.copy()
    wrong[0, 0], wrong[0, 1] = wrong[0, 1], wrong[0, 0]
    right = [sudoku.solve(q.item.grid) for q in queries]  # each copy's own solution, in the copy's frame
    answers = [Answer(queries[0], sudoku.encode_answer(wrong), 3, [0.9]),
               *[Answer(q, sudoku.encode_answer(r), 3, [0.2]) for q, r in zip(queries[1:], right[1:])]]
    grid, attempts = task.combine(puzzle, answers)
    assert attempts is None and (grid == solution).all()  # three copies outvote the puzzle's own (wrong) answer
    tie = [Answer(queries[0], sudoku.encode_answer(wrong), 3, [0.9]),
           Answer(queries[1], sudoku.encode_answer(right[1]), 3, [0.3])]
    assert (task.combine(puzzle, tie)[0] == wrong).all()  # one vote each: the more confident answer


def test_solving_runs_every_version_of_a_puzzle(sudoku_model):
    model, config = io.load(sudoku_model)
    puzzles = [p for p, _ in sudoku.generate(2, np.random.default_rng(6), givens=40)]
    assert solver.Solver(model, config).rows(puzzles) == 2 * sudoku.TASK.default_versions
    single = solver.Solver(model, config, num_aug=1, max_steps=2)
    assert single.rows(puzzles) == 2 and len(single.solve(puzzles)) == 2
    voting = solver.Solver(model, config, num_aug=3, max_steps=2)
    for solution in voting.solve(puzzles):
        assert solution.answer.shape == (9, 9) and solution.steps == 2


@pytest.mark.slow
def test_an_arc_task_file_is_the_task_its_name_says(tmp_path, arc_model):
    (tmp_path / "abc123.json").write_text(json.dumps(ARC_TASK))  # the usual layout: one task, named by its file
    result = run("solve", tmp_path / "abc123.json", "--model", arc_model, "--json", "--num-aug", "3")
    assert "not in the model's training data" not in result.output, result.output
    [record] = answers(result.output)
    assert record["source"] == str(tmp_path / "abc123.json") and len(record["attempts"]) == 1, result.output


@pytest.mark.slow
def test_copies_run_only_for_puzzles_whose_own_answer_fails_the_check(monkeypatch):
    """A puzzle solved alone costs one row; one whose answer fails the check gets all its versions, which vote with
    the first answer exactly as when every version runs; progress still counts every row of ``rows``."""
    model, config = io.load(solver.shipped_model("sudoku"))
    puzzles = [p for p, _ in sudoku.generate(6, np.random.default_rng(77), givens=22)]
    steps = 8  # the trained steps: enough to solve some puzzles alone and not all
    alone = [s.solved for s in solver.Solver(model, config, num_aug=1, max_steps=steps).solve(puzzles)]
    assert 0 < sum(alone) < len(puzzles)  # both kinds of puzzle are in the batch
    rows_run = []
    real_run_act = solver.run_act

    def counting_run_act(model, inputs, *args, **kwargs):
        rows_run.append(len(inputs))
        return real_run_act(model, inputs, *args, **kwargs)

    monkeypatch.setattr(solver, "run_act", counting_run_act)
    versions = sudoku.TASK.default_versions
    checked = solver.Solver(model, config, max_steps=steps)
    progress = []
    solutions = checked.solve(puzzles, on_batch=progress.append)
    assert sum(rows_run) == len(puzzles) + (versions - 1) * alone.count(False)
    assert sum(progress) == checked.rows(puzzles) == versions * len(puzzles)
    monkeypatch.setattr(type(sudoku.TASK), "proven_by_check", False)
    everyone = solver.Solver(model, config, max_steps=steps).solve(puzzles)
    for was_solved, mine, voted in zip(alone, solutions, everyone):
        if was_solved:
            assert mine.solved and mine.steps == len(mine.halt_confidence)
        else:
            assert (mine.answer == voted.answer).all() and mine.solved == voted.solved
