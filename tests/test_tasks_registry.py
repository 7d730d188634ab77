import json

import pytest

from hrm_mlx import tasks
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks import arc, maze, sudoku

SUDOKU = "530070000600195000098000060800060003400803001700020006060000280000419005000080079"
MAZE = "\n".join(["#######", "#S    #", "# ### #", "#     #", "# ### #", "#    G#", "#######"])
ARC_TASK = {"train": [{"input": [[1, 2]], "output": [[2, 1]]}], "test": [{"input": [[3, 4]]}]}

INTERFACE = (
    "VOCAB_SIZE", "SEQ_LEN", "parse", "looks_like", "validate", "encode", "encode_answer", "decode",
    "check", "to_text", "generate", "generate_batch", "augment", "invert_augmentation",
)  # fmt: skip


def one_line_error(match: str):
    return pytest.raises(HrmMlxError, match=match)


TASK_INTERFACE = ("parse", "looks_like", "validate", "encode", "decode", "check", "to_text", "grid_picture", "frame")


def test_registry_holds_every_task_with_the_shared_interface():
    assert tasks.names() == ["sudoku", "mini-sudoku", "maze", "arc"]
    for module in (sudoku, maze, arc):
        task = tasks.get(module.TASK.name)
        assert task is module.TASK and isinstance(task, tasks.Task)
        missing = [attr for attr in INTERFACE if not hasattr(module, attr)]
        assert not missing, f"{task.name} lacks {missing}"
        untaught = [m for m in TASK_INTERFACE if getattr(type(task), m) is getattr(tasks.Task, m)]
        assert not untaught, f"the {task.name} task does not implement {untaught}"
    assert (arc.VOCAB_SIZE, arc.SEQ_LEN) == (12, 900) and arc.TASK.vocab_size == 12


def test_get():
    assert tasks.get("sudoku") is sudoku.TASK and tasks.get(" ARC ") is arc.TASK
    with one_line_error(r"unknown task 'chess' \(known: sudoku, mini-sudoku, maze, arc\)") as info:
        tasks.get("chess")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, filename, expected",
    [
        (SUDOKU, None, sudoku),
        (SUDOKU, "puzzle.txt", sudoku),
        ("source,question,answer,rating\nx," + SUDOKU + ",,1\n", "train.csv", sudoku),
        (json.dumps({"grid": SUDOKU}), "p.json", sudoku),
        (MAZE, None, maze),
        ("question\n" + MAZE.replace("\n", ""), "maze.csv", maze),
        (json.dumps({"task": "maze", "grid": MAZE.split("\n")}), None, maze),
        (json.dumps(ARC_TASK), "0a1b2c3d.json", arc),
        (json.dumps({"0a1b2c3d": ARC_TASK, "ffff0000": ARC_TASK}), "arc-agi_evaluation_challenges.json", arc),
        (json.dumps(ARC_TASK) + "\n" + json.dumps({**ARC_TASK, "id": "b"}), "tasks.jsonl", arc),
    ],
)
def test_detect(text, filename, expected):
    assert tasks.detect(text, filename) is expected.TASK


@pytest.mark.parametrize(
    "text, filename, match",
    [
        ("", "a.json", "a.json is empty"),
        ("hello world", None, "the input is not a puzzle file of a known task"),
        (json.dumps({"train": [], "test": []}), "x.json", "x.json, read as arc puzzles: task x: no demonstration"),
        (json.dumps({"0a1b2c3d": [[[1, 2]]]}), "/data/solutions.json", "solutions.json is an ARC solutions file"),
    ],
)
def test_detect_errors_are_one_line(text, filename, match):
    with one_line_error(match) as info:
        tasks.detect(text, filename)
    assert "\n" not in str(info.value)


def test_ambiguous_content_is_settled_by_extension_or_name_else_an_error(monkeypatch):
    monkeypatch.setattr(maze.TASK, "looks_like", lambda text: True)
    monkeypatch.setattr(arc.TASK, "looks_like", lambda text: True)
    with one_line_error(r"reads as more than one task \(sudoku, maze, arc\)") as info:
        tasks.detect(SUDOKU)
    assert "\n" not in str(info.value)
    with one_line_error(r"more than one task \(sudoku, maze\)"):
        tasks.detect(SUDOKU, "p.csv")  # .csv rules out arc only
    assert tasks.detect(SUDOKU, "hard-maze.csv") is maze.TASK  # a task name in the file name decides
    assert tasks.detect(SUDOKU, "p.sdk") is sudoku.TASK  # an extension only sudoku uses


@pytest.mark.parametrize(
    "text, filename, match",
    [
        ("\t#####\n\t#S G#\n\t#####", "m.txt", r"m.txt, read as maze puzzles: line 1 holds a tab"),
        ("#####\n#S G#\n#X  #\n#####", "m.txt", r"m.txt, read as maze puzzles: line 3, column 2: unknown maze symbol"),
        ("5" * 80, "s.txt", r"s.txt, read as sudoku puzzles: line 1: found 80 cells"),
        ("[" * 5000 + "]" * 5000, "deep.json", r"deep.json: JSON nested too deeply to be a puzzle"),
        ('{"grid": ["#S#", ', "m.json", r"m.json: malformed JSON"),
    ],
)
def test_detection_gives_the_real_reason_without_naming_the_task(text, filename, match):
    with one_line_error(match) as info:
        tasks.detect(text, filename)
    assert "\n" not in str(info.value)


def test_json_nested_deeper_than_python_recurses_is_a_one_line_error():
    from hrm_mlx.tasks import formats

    for depth in (900, 990, 5000, 100_000):
        text = "[" * depth + "]" * depth
        for task in tasks.all_tasks():
            try:
                task.parse(text)
            except HrmMlxError as error:
                assert "\n" not in str(error)
    with pytest.raises(HrmMlxError, match="nested too deeply"):
        formats.load_json_documents("[" * 100_000 + "]" * 100_000)
