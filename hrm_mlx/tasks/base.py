"""The Task interface: everything hrm-mlx knows about one kind of puzzle, in one object.

A task module defines a ``Task`` subclass and registers an instance with ``hrm_mlx.tasks.register``; the data
builder, training, model folders, the solver and the command line ask the task and never test its name. A task
says:

* how it is named and recognised: ``name``, file ``extensions``, ``looks_like`` and ``parse`` of puzzle files;
* how its puzzles become tokens: ``vocab_size``, ``encode`` / ``decode`` with the options a model's config.json
  "task" block records (``model_info`` writes that block, ``options`` reads it), the input token of the cells a
  model fills (``free_token``), ``validate`` and the answer ``check``;
* where its data come from: the ``DataConfig`` of its settings, the ``generate_batch`` generator, the official
  CSV symbols, the augmented ``versions`` of a training example, or its own ``build_splits``;
* how it meets other code: the ``official_seq_len`` of official checkpoints, the ``default_recipe`` of
  ``hrm-mlx train --task``, how its answers are drawn (``pictures``: plain cells and style names, no terminal code).

Pure numpy: no mlx import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

import numpy as np

from hrm_mlx.config import Settings, setting
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks.grids import square_side

@dataclass
class DataConfig(Settings):
    """Data settings every task has (``train.data`` of a recipe)."""

    kind: ClassVar[str] = "data setting"

    source: str = setting("generate", "where the data come from: 'generate' (the task's seeded generator), 'hub' "
                          "(the official CSVs on the Hugging Face Hub), a task-specific source, or a local folder "
                          "(train.csv/test.csv, or the official layout)")
    seed: int = setting(0, "seed of generation, subsampling and augmentation")
    test_subsample: int | None = setting(None, "keep this many test puzzles (seeded); null keeps all", minimum=1)
    supervise: str = setting("all", "'all' (official): every label cell is trained on; 'free': only the cells the "
                             "model must fill (the others are copied from the input when solving)",
                             choices=("all", "free"))


@dataclass
class GridDataConfig(DataConfig):
    """Data settings of the tasks with a generator and the official one-example-per-puzzle CSVs."""

    n_train: int = setting(1000, "generated puzzles in the training split", minimum=1)
    n_test: int = setting(200, "generated puzzles in the test split (none of them among the training inputs)")
    subsample: int | None = setting(None, "keep this many training puzzles of an official CSV (seeded); null keeps "
                                    "all", minimum=1)
    repo: str = setting("", "Hugging Face dataset of the 'hub' source (train.csv and test.csv)")


@dataclass
class Query:
    """One row a model runs for a puzzle: what the task encodes (the puzzle itself for most tasks; for ARC, one
    version of one test input), the puzzle-embedding row the model reads, and the task's note for putting the
    rows' answers together (``tag``)."""

    item: object
    identifier: int = 0
    tag: object = None


@dataclass
class Answer:
    """What the model made of one query: the tokens at its last step, the steps it ran, sigmoid(q_halt) per step."""

    query: Query
    tokens: np.ndarray
    steps: int
    halt_confidence: list[float]


@dataclass
class Picture:
    """A drawing of a grid for a terminal: ``rows`` of (text, style) cells, the style in rich's syntax ("bold",
    "dim", "on #0074D9"; "" for none), under an optional ``caption``."""

    rows: list[list[tuple[str, str]]]
    caption: str = ""


class Task:
    """The interface (see the module docstring). Subclasses set the class attributes and implement the puzzle
    methods; the defaults below serve the grid tasks with one example per puzzle."""

    name: str
    extensions: tuple[str, ...] = ()  # file extensions puzzle files of this task use (detection)
    vocab_size: int
    official_seq_len: int | None = None  # sequence length of the official models (checkpoint conversion)
    default_recipe: str | None = None  # recipe of `hrm-mlx train --task NAME`
    DataConfig: ClassVar[type[DataConfig]] = GridDataConfig
    sources: tuple[str, ...] = ("generate", "hub")  # named data sources; anything else is a local folder
    free_token: int | None = None  # input token of the cells a model fills (blank, open); None: every cell
    named_puzzles: bool = False  # puzzle identifiers name puzzles the model learned: identifiers.json travels along
    csv_symbols: dict[str, int] = {}  # official CSV character -> token
    title: str = ""  # the task in words (model cards)
    example: str = "PUZZLE"  # a puzzle file to try a model on (model cards)
    answers_file: bool = False  # the answers come in a file of their own (attach_answers)
    any_size: bool = False  # a model that runs at any size may meet grids larger than its training canvas
    default_versions: int = 1  # versions of a puzzle solving runs by default, the puzzle among them (see below)
    fixed_steps: bool = False  # solving runs exactly the model's trained ACT steps (the official evaluation)
    proven_by_check: bool = False  # an answer the checker accepts is right: copies vote only when it fails
    submission_file: bool = False  # a run's answers make one submission file (``submission``)

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    # -- puzzle files ------------------------------------------------------------------------------------------
    def parse(self, text: str) -> list:
        raise NotImplementedError

    def parse_file(self, text: str, stem: str | None = None) -> list:
        """The puzzles of a file whose name without its extension is ``stem``: ``parse``, and for tasks whose
        puzzles are named, an unnamed puzzle takes the file's name (an ARC task file 007bbfb7.json is task
        007bbfb7)."""
        return self.parse(text)

    def looks_like(self, text: str) -> bool:
        raise NotImplementedError

    def not_puzzles(self, text: str) -> str | None:
        """Why ``text``, though this task's, holds no puzzles (e.g. an answers file), else None."""
        return None

    def resembles(self, text: str) -> bool:
        """Whether ``text``, which ``parse`` refuses, looks meant as this task's puzzles (its symbols): detection
        then gives the reason ``parse`` gives."""
        return False

    def name_of(self, puzzle) -> str | None:
        """The name the input gave the puzzle (a CSV row's source, a JSON id), or None."""
        return getattr(puzzle, "name", None)

    def attach_answers(self, puzzles: list, text: str) -> list:
        """The puzzles with the answers of a separate answers file filled in (tasks whose files keep answers
        apart, as ARC's solutions files)."""
        raise HrmMlxError(f"{self.name} puzzles carry their answers in the puzzle file; there is no separate "
                          "answers file")

    def to_text(self, item, compact: bool = False) -> str:
        raise NotImplementedError

    # -- the model's task block (config.json "task") -----------------------------------------------------------
    def model_info(self, data: DataConfig) -> dict:
        """The config.json "task" block of a model trained on ``data``: what solving needs to know."""
        return {"name": self.name, "supervise": data.supervise}

    def options(self, info: dict) -> dict:
        """Encoding options (keyword arguments of encode and validate) from a model's task block."""
        return {}

    def check_info(self, info: dict) -> None:
        """Raise HrmMlxError when a model's task block is not one this task wrote."""

    def seq_len(self, info: dict) -> int | None:
        """The tokens a puzzle takes when encoded as a model's task block ``info`` says (None: no fixed length)."""
        return self.official_seq_len

    def info_for_seq_len(self, seq_len: int, given: dict | None = None) -> dict | None:
        """The task block of a converted checkpoint with sequences of ``seq_len`` tokens (``given``: the block its
        config held), or None when no puzzle of this task has that length."""
        return {"name": self.name} if seq_len == self.official_seq_len else None

    def data_for_model(self, info: dict) -> dict:
        """Data settings of a test set for a model that does not record its own: the official test data when the
        task has them, encoded as the model's task block says."""
        settings = {"supervise": info.get("supervise", "all")}
        if "hub" in self.sources:
            settings["source"] = "hub"
        return settings

    def describe_data(self, data: DataConfig) -> str:
        """Where the data came from, in words (a model card's line)."""
        return {"generate": "generated puzzles", "hub": getattr(data, "repo", "hub")}.get(data.source, data.source)

    def names_data_path(self, folder_name: str) -> bool:
        """Whether an official data folder (the data_path of an official checkpoint) holds this task's data."""
        return self.official_seq_len is not None and self.name in folder_name.lower()

    # -- puzzles -----------------------------------------------------------------------------------------------
    def validate(self, puzzle, **options) -> None:
        raise NotImplementedError

    def encode(self, puzzle, **options) -> np.ndarray:
        raise NotImplementedError

    def decode(self, tokens: np.ndarray, puzzle=None):
        raise NotImplementedError

    def check(self, puzzle, answer) -> tuple[bool, str]:
        raise NotImplementedError

    def free_cells(self, tokens: np.ndarray) -> np.ndarray:
        """Where a model fills in the answer (the other cells are copied from the input)."""
        tokens = np.asarray(tokens)
        return np.ones(tokens.shape, dtype=bool) if self.free_token is None else tokens == self.free_token

    def puzzle_from_tokens(self, tokens: np.ndarray):
        """The puzzle an input token sequence encodes (to check predicted answers), or None when tokens alone do
        not make a puzzle this task can check."""
        return None

    def grid_picture(self, puzzle, grid, changed=frozenset()) -> Picture:
        """One answer grid (``changed``: (row, column) cells that changed at the step shown, marked)."""
        raise NotImplementedError

    def pictures(self, puzzle, answer, attempts=None) -> list[Picture]:
        """The answer (and for tasks with several attempts, those) drawn for a terminal."""
        return [self.grid_picture(puzzle, answer)]

    def frame(self, puzzle, grid, changed=frozenset()) -> tuple[list, tuple[int, int] | None]:
        """One answer grid as picture cells (rows of hrm_mlx.animate.Cell) and the (rows, columns) of the blocks
        to outline (Sudoku's boxes; None): a frame of an animation."""
        raise NotImplementedError

    # -- solving -----------------------------------------------------------------------------------------------
    def solver_context(self, identifiers: list[str] | None, num_aug: int | None):
        """What solving needs besides the model, from the model's puzzle identifiers and how many versions of each
        puzzle to solve (None: ``default_versions``): by default that number (see ``queries``)."""
        return num_aug or self.default_versions

    def check_solvable(self, puzzle, context) -> None:
        """Raise HrmMlxError when the model cannot answer this (valid) puzzle."""

    def exact_check(self, puzzle) -> str | None:
        """For tasks with an exact solver: raise HrmMlxError when no answer to this (valid) puzzle can pass the
        checker, or return a note the user should read with the model's answer (Sudoku: several solutions)."""
        return None

    def symmetric_copies(self, puzzle, count: int) -> list[tuple[object, Callable]]:
        """Up to ``count`` copies of a puzzle under the task's symmetries (each with the function that maps an
        answer of the copy back onto the puzzle), the same for the same puzzle; none by default. A model is not
        exactly invariant under them, so its answers to the copies differ where it is unsure, and their vote
        is right more often than any single answer."""
        return []

    def queries(self, puzzle, versions: int) -> list[Query]:
        """The puzzle, then ``versions - 1`` symmetric copies of it (``tag``: the map back onto the puzzle)."""
        copies = self.symmetric_copies(puzzle, versions - 1) if versions > 1 else []
        return [Query(puzzle)] + [Query(copy, 0, back) for copy, back in copies]

    def encode_query(self, item, **options) -> np.ndarray:
        return self.encode(item, **options)

    def combine(self, puzzle, answers: list[Answer]) -> tuple[object, list | None]:
        """(answer, ranked attempts or None) from the answers of the puzzle's queries: the answer most of them
        give, mapped back onto the puzzle (ties: the one with the higher mean final halting confidence)."""
        votes: dict[bytes, list] = {}
        for answer in answers:
            grid = self.decode(answer.tokens, answer.query.item)
            if answer.query.tag is not None:
                grid = answer.query.tag(grid)
            entry = votes.setdefault(np.asarray(grid).tobytes(), [grid, 0, 0.0])
            entry[1] += 1
            entry[2] += answer.halt_confidence[-1]
        grid, _, _ = max(votes.values(), key=lambda entry: (entry[1], entry[2] / entry[1]))
        return grid, None

    def verdict(self, puzzle, answer, attempts) -> tuple[bool, str]:
        return self.check(puzzle, answer)

    def traced_query(self, puzzle, queries: list[Query]) -> int | None:
        """Which query a trace of the puzzle follows (None: none)."""
        return 0

    def trace_start(self, puzzle, query: Query, inputs: np.ndarray):
        """The grid a traced query's first step is compared with (the puzzle as given)."""
        return self.decode(inputs, puzzle)

    def trace_decode(self, puzzle, query: Query, tokens: np.ndarray):
        return self.decode(tokens, puzzle)

    def trace_check(self, puzzle, grid) -> tuple[bool | None, str]:
        return self.check(puzzle, grid)

    def submission(self, solutions: list) -> dict | None:
        """The submission file of a whole run (ARC: Kaggle's), or None for tasks without one."""
        return None

    def write_submission(self, path, submission: dict):
        raise HrmMlxError(f"the {self.name} task has no submission file")

    def scores(self, submission: dict, answers_text: str) -> list[tuple[str, float, str | None]]:
        """(name, value, what it measures) of a submission against an answers file."""
        return []

    # -- data --------------------------------------------------------------------------------------------------
    def generate_batch(self, n: int, rng: np.random.Generator, data: DataConfig) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, labels) int32 [n, seq_len] of n generated puzzles."""
        raise HrmMlxError(f"the {self.name} task has no generator")

    def csv_cells(self, width: int, where: str) -> int:
        """The cells every row of an official CSV must have when its first puzzle has ``width`` (HrmMlxError when no
        puzzle of this task has that many)."""
        return width

    def versions(self, inputs: np.ndarray, labels: np.ndarray, data: DataConfig,
                 rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
        """The training copies of one example: itself, then its augmentations."""
        return [(inputs, labels)]

    def build_splits(self, data: DataConfig, progress, test_only: bool = False) -> tuple[dict, list[str]]:
        """({"train": arrays, "test": arrays}, identifiers) in the official layout (``test_only``: the test split
        alone, where the task can build it so); the default makes one puzzle of each generated or CSV example
        (hrm_mlx.data.example_splits)."""
        from hrm_mlx import data as datasets

        return datasets.example_splits(self, data, progress, test_only)


class CanvasTask(Task):
    """A task whose grids sit at the top-left of a square canvas of tokens; a model's task block records the
    canvas side (``canvas``, by default the official one)."""

    canvas: int
    any_size = True

    def options(self, info: dict) -> dict:
        return {"canvas": int(info.get("canvas", self.canvas))}

    def check_info(self, info: dict) -> None:
        canvas = info.get("canvas", self.canvas)
        if not (isinstance(canvas, int) and not isinstance(canvas, bool) and canvas > 0):
            raise HrmMlxError(f"task canvas must be a positive integer, not {canvas!r}")

    def seq_len(self, info: dict) -> int | None:
        return self.options(info)["canvas"] ** 2

    def info_for_seq_len(self, seq_len: int, given: dict | None = None) -> dict | None:
        side = square_side(seq_len)
        return None if side is None else {"canvas": side, **(given or {}), "name": self.name}

    def side(self, puzzle) -> int:
        """The side of the canvas a puzzle needs."""
        raise NotImplementedError


def csv_table(symbols: dict[str, int]) -> np.ndarray:
    """A byte -> token table of CSV characters (255 for characters that are no cell)."""
    table = np.full(256, 255, dtype=np.uint8)
    for symbol, token in symbols.items():
        table[ord(symbol)] = token
    return table


def span(value: int | Sequence[int], what: str, low: int, high: int) -> tuple[int, int]:
    """(low, high) of an exact value or an inclusive [low, high] range within low..high, else an HrmMlxError."""
    bounds = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(bounds) != 2 or not low <= bounds[0] <= bounds[1] <= high:
        raise HrmMlxError(f"{what} must lie in {low}..{high} (low <= high), got {value}")
    return int(bounds[0]), int(bounds[1])
