"""The puzzle tasks and how to tell them apart.

Each task module (sudoku, maze, arc) offers the same shape of interface: NAME, VOCAB_SIZE, SEQ_LEN, a puzzle
dataclass, parse(text) -> puzzles, looks_like(text), validate, encode, encode_answer, decode, check(puzzle, answer)
-> (ok, reason), to_text, generate / generate_batch and augment / invert_augmentation. `TASKS` maps task names to
the modules, `get(name)` picks one, `detect(text, filename)` recognises a puzzle file.
"""

from __future__ import annotations

from pathlib import PurePath
from types import ModuleType

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks import arc, maze, sudoku

TASKS: dict[str, ModuleType] = {"sudoku": sudoku, "maze": maze, "arc": arc}

# File extensions each task is written in; an extension listed for no task says nothing.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "sudoku": (".txt", ".csv", ".json", ".jsonl", ".sdk", ".sudoku"),
    "maze": (".txt", ".csv", ".json", ".jsonl", ".maze"),
    "arc": (".json", ".jsonl"),
}


def get(name: str) -> ModuleType:
    """The task module called `name` (case-insensitive)."""
    module = TASKS.get(str(name).strip().lower())
    if module is None:
        raise HrmMlxError(f"unknown task {name!r} (known: {', '.join(TASKS)})")
    return module


def detect(text: str, filename: str | None = None) -> ModuleType:
    """The task whose looks_like() accepts `text`. When several do, the file's extension, then a task name in
    the file name, decide; an input no task reads, or one left ambiguous, is an HrmMlxError."""
    what = f"{PurePath(filename).name}" if filename else "the input"
    if not text.strip():
        raise HrmMlxError(f"{what} is empty: no puzzle to read")
    matches = [name for name, module in TASKS.items() if module.looks_like(text)]
    if len(matches) > 1 and filename:
        suffix = PurePath(filename).suffix.lower()
        by_extension = [name for name in matches if suffix in EXTENSIONS[name]]
        if by_extension:
            matches = by_extension
    if len(matches) > 1 and filename:
        stem = PurePath(filename).stem.lower()
        by_name = [name for name in matches if name in stem]
        if len(by_name) == 1:
            matches = by_name
    if len(matches) == 1:
        return TASKS[matches[0]]
    if matches:
        raise HrmMlxError(f"{what} reads as more than one task ({', '.join(matches)}); name the task explicitly")
    if arc.looks_like_solutions(text):
        raise HrmMlxError(f"{what} is an ARC solutions file (task id -> output grids), not puzzles")
    raise HrmMlxError(
        f"{what} is not a puzzle file of a known task ({', '.join(TASKS)}); check its format or name the task"
    )
