"""The puzzle tasks, registered by name, and how to tell their files apart.

A task is a ``Task`` object (``hrm_mlx.tasks.base``) that a module of this package registers on import. The
modules are imported here: the built-in ones first (so that listings keep their order), then any other module of
the package, so a new task is one new module. ``get(name)`` picks a task, ``names()`` lists them, ``detect(text,
filename)`` recognises a puzzle file.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import PurePath

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks.base import DataConfig, Picture, Task
from hrm_mlx.tasks.formats import load_json_documents

__all__ = ["DataConfig", "Picture", "Task", "all_tasks", "detect", "get", "names", "register"]

_REGISTRY: dict[str, Task] = {}
_HELPERS = ("base", "formats", "grids")  # modules of this package that define no task
_FIRST = ("sudoku", "maze", "arc")


def register(task: Task) -> Task:
    """Make ``task`` known by its name (a module calls this for each task it defines)."""
    if task.name in _REGISTRY and _REGISTRY[task.name] is not task:
        raise ValueError(f"two tasks are called {task.name!r}")
    _REGISTRY[task.name] = task
    return task


def names() -> list[str]:
    return list(_REGISTRY)


def all_tasks() -> list[Task]:
    return list(_REGISTRY.values())


def get(name: str) -> Task:
    """The task called ``name`` (case-insensitive)."""
    task = _REGISTRY.get(str(name).strip().lower())
    if task is None:
        raise HrmMlxError(f"unknown task {name!r} (known: {', '.join(_REGISTRY)})")
    return task


def detect(text: str, filename: str | None = None) -> Task:
    """The task whose looks_like() accepts ``text``. When several do, the file's extension, then a task name in
    the file name, decide; an input no task reads, or one left ambiguous, is an HrmMlxError."""
    what = f"{PurePath(filename).name}" if filename else "the input"
    if not text.strip():
        raise HrmMlxError(f"{what} is empty: no puzzle to read")
    matches = [task for task in _REGISTRY.values() if task.looks_like(text)]
    if len(matches) > 1 and filename:
        suffix = PurePath(filename).suffix.lower()
        matches = [task for task in matches if suffix in task.extensions] or matches
    if len(matches) > 1 and filename:
        stem = PurePath(filename).stem.lower()
        by_name = [task for task in matches if task.name in stem]
        if len(by_name) == 1:
            matches = by_name
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise HrmMlxError(f"{what} reads as more than one task ({', '.join(t.name for t in matches)}); name the "
                          "task explicitly")
    for task in _REGISTRY.values():
        reason = task.not_puzzles(text)
        if reason:
            raise HrmMlxError(f"{what} is {reason}")
    if text.lstrip("\ufeff \t\r\n")[:1] in ("{", "["):
        try:
            load_json_documents(text)
        except HrmMlxError as error:  # not JSON at all: that is the reason
            raise HrmMlxError(f"{what}: {error}") from None
    meant = [task for task in _REGISTRY.values() if task.resembles(text)]
    if meant:  # the first task it resembles says why (Sudoku before mini Sudoku, which shares its symbols)
        try:
            meant[0].parse_file(text, PurePath(filename).stem if filename else None)
        except HrmMlxError as error:
            raise HrmMlxError(f"{what}, read as {meant[0].name} puzzles: {error}") from None
    raise HrmMlxError(
        f"{what} is not a puzzle file of a known task ({', '.join(_REGISTRY)}); check its format or name the task"
    )


def _import_tasks() -> None:
    found = [module.name for module in pkgutil.iter_modules(__path__) if module.name not in _HELPERS]
    for name in [*_FIRST, *sorted(set(found) - set(_FIRST))]:
        importlib.import_module(f"{__name__}.{name}")


_import_tasks()
