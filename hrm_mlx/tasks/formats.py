"""Reading helpers the task modules share: JSON documents (one document or JSONL), lists of JSON entries, the
dataset CSV files (header naming `question`, optionally `answer`) and the sample that looks_like() judges.

Pure Python on purpose (no numpy, no mlx); every problem a user can cause is an HrmMlxError with a one-line message.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Callable, Iterator

from hrm_mlx.errors import HrmMlxError

DETECTION_LIMIT = 1 << 20  # looks_like() reads at most this many characters of line-oriented text


def load_json_documents(text: str) -> list[tuple[str, object]]:
    """[(where, document)]: the whole text as one JSON document, or else one document per line (JSONL, when every
    non-blank line starts with '{'). `where` is "JSON" or "line N", for error messages."""
    try:
        return [("JSON", json.loads(text))]
    except json.JSONDecodeError as whole_error:
        lines = [(no, line) for no, line in enumerate(text.splitlines(), 1) if line.strip()]
        if len(lines) < 2 or not all(line.lstrip().startswith("{") for _, line in lines):
            raise HrmMlxError(
                f"malformed JSON: {whole_error.msg} (line {whole_error.lineno}, column {whole_error.colno})"
            ) from None
    documents = []
    for line_no, line in lines:
        try:
            documents.append((f"line {line_no}", json.loads(line)))
        except json.JSONDecodeError as error:
            raise HrmMlxError(f"malformed JSON on line {line_no}: {error.msg} (column {error.colno})") from None
    return documents


def json_entries(text: str, is_single_grid: Callable[[list], bool]) -> list[tuple[str, object]]:
    """[(where, entry)] of every puzzle entry in JSON/JSONL text: a top-level list is a list of entries unless
    `is_single_grid` says it is one bare grid; anything else is one entry."""
    entries = []
    for where, document in load_json_documents(text):
        if isinstance(document, list) and not is_single_grid(document):
            entries.extend((f"{where} entry {index}", entry) for index, entry in enumerate(document, 1))
        else:
            entries.append((where, document))
    return entries


def is_csv_header(line: str) -> bool:
    """True for a CSV header line naming a `question` column (the sapientinc dataset files)."""
    return "question" in [field.strip().strip('"').lower() for field in line.split(",")]


def csv_questions(text: str) -> Iterator[tuple[str, str, str | None]]:
    """(where, question, answer or None) for each row of a dataset CSV, lazily, so row errors come in file order
    (columns matched case-insensitively; only `question` is required). The caller trims `text` as its cells
    require (maze cells may end in significant spaces)."""
    reader = csv.DictReader(io.StringIO(text))
    reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
    for row in reader:
        where = f"CSV line {reader.line_num}"
        question = row.get("question")
        if not question:
            raise HrmMlxError(f"{where}: the question field is missing or empty")
        yield where, question, row.get("answer") or None


def detection_sample(text: str, limit: int = DETECTION_LIMIT) -> str:
    """What looks_like() parses: the whole text, or for large line-oriented text its first `limit` characters cut
    at a puzzle (blank line) or line boundary. JSON lists are kept whole (a cut would break them)."""
    if len(text) <= limit or text.lstrip().startswith("["):
        return text
    head = text[:limit]
    cut = head.rfind("\n\n")
    return head[:cut] if cut > 0 else head[: max(head.rfind("\n"), 0)]
