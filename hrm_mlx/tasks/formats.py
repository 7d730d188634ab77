"""Reading helpers the task modules share: JSON documents (one document or JSONL), lists of JSON entries, the
dataset CSV files (header naming `question`, optionally `answer`, `source`), the sample that looks_like() judges
and the numbering of lines in messages.

Pure Python on purpose (no numpy, no mlx); every problem a user can cause is an HrmMlxError with a one-line message.
A large file is read in parts (hrm_mlx.solve); ``lines_from`` tells the parsers which line of the file a part starts
at, so their messages name the file's lines.
"""

from __future__ import annotations

import contextvars
import csv
import io
import json
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

from hrm_mlx.errors import HrmMlxError

DETECTION_LIMIT = 1 << 20  # looks_like() reads at most this many characters of line-oriented text
TOO_DEEP = "JSON nested too deeply to be a puzzle"


_first_line = contextvars.ContextVar("first_line", default=1)


@contextmanager
def lines_from(number: int):
    """Parse a part of a file whose first line is line ``number`` of the file: messages count lines from there."""
    token = _first_line.set(number)
    try:
        yield
    finally:
        _first_line.reset(token)


def numbered_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number in the file, line) of the lines of the text being parsed (see lines_from)."""
    return enumerate(lines, _first_line.get())


def parse_json(text: str):
    """json.loads, with a document nested deeper than Python's recursion allows as a one-line HrmMlxError (no
    puzzle file nests more than a few levels)."""
    try:
        return json.loads(text)
    except RecursionError:
        raise HrmMlxError(TOO_DEEP) from None


def load_json_documents(text: str) -> list[tuple[str, object]]:
    """[(where, document)]: the whole text as one JSON document, or else one document per line (JSONL, when every
    non-blank line starts with '{'). `where` is "JSON" or "line N", for error messages."""
    try:
        return [("JSON", parse_json(text))]
    except json.JSONDecodeError as whole_error:
        lines = [(no, line) for no, line in numbered_lines(text.splitlines()) if line.strip()]
        if len(lines) < 2 or not all(line.lstrip().startswith("{") for _, line in lines):
            line = whole_error.lineno + _first_line.get() - 1
            raise HrmMlxError(f"malformed JSON: {whole_error.msg} (line {line}, column {whole_error.colno})") from None
    documents = []
    for line_no, line in lines:
        try:
            documents.append((f"line {line_no}", parse_json(line)))
        except HrmMlxError as error:
            raise HrmMlxError(f"line {line_no}: {error}") from None
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


def csv_questions(text: str) -> Iterator[tuple[str, str, str | None, str | None]]:
    """(where, question, answer or None, source or None) for each row of a dataset CSV, lazily, so row errors come
    in file order (columns matched case-insensitively; only `question` is required; `source` names the puzzle).
    The caller trims `text` as its cells require (maze cells may end in significant spaces)."""
    reader = csv.DictReader(io.StringIO(text))
    try:
        reader.fieldnames = [name.strip().lower() for name in reader.fieldnames or []]
        for row in reader:
            where = f"CSV line {reader.line_num + _first_line.get() - 1}"
            question = row.get("question")
            if not isinstance(question, str) or not question:
                raise HrmMlxError(f"{where}: the question field is missing or empty")
            answer, source = row.get("answer"), row.get("source")
            yield (where, question, answer if isinstance(answer, str) and answer else None,
                   source.strip() or None if isinstance(source, str) else None)
    except csv.Error as error:  # a stray carriage return or quote, a field beyond the csv module's limit
        line = max(reader.line_num, 1) + _first_line.get() - 1
        raise HrmMlxError(f"CSV line {line}: malformed CSV ({' '.join(str(error).split())})") from None


def detection_sample(text: str, limit: int = DETECTION_LIMIT) -> str:
    """What looks_like() parses: the whole text, or for large line-oriented text its first `limit` characters cut
    at a puzzle (blank line) or line boundary. JSON lists are kept whole (a cut would break them)."""
    if len(text) <= limit or text.lstrip().startswith("["):
        return text
    head = text[:limit]
    cut = head.rfind("\n\n")
    return head[:cut] if cut > 0 else head[: max(head.rfind("\n"), 0)]


def mostly(text: str, symbols: str, share: float = 0.9) -> bool:
    """Whether at least ``share`` of the visible characters of ``text``'s detection sample are among ``symbols``."""
    marks = [ch for ch in detection_sample(text) if not ch.isspace()]
    return bool(marks) and sum(ch in symbols for ch in marks) >= share * len(marks)
