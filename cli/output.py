"""What every command shares for scripts: ``--json`` prints JSON on stdout, ``--out FILE`` writes the same JSON to a
file, and the exit codes mean the same everywhere (EXIT_CODES)."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path

from hrm_mlx.errors import HrmMlxError

OK, FAILED, BAD_INPUT, INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = ("Exit codes (every command): 0 = it ran and every answer passed its check; 1 = it ran but some "
              "answers failed their check (solve, eval); 2 = bad input or usage; 130 = interrupted.")
JSON_HELP = "Print JSON on stdout instead of tables and pictures."
OUT_HELP = "Also write the JSON to this file (replaced atomically)."
STREAM_JSON_HELP = ("Print JSON on stdout instead of tables and pictures: one record per line as it comes, the last "
                    "one a summary.")
STREAM_OUT_HELP = ("Also write the JSON records to this file, line by line as they come (replaced atomically when "
                   "the command ends, also when interrupted).")


def check_folder(option: str, path: Path | None) -> None:
    """Refuse an output file in a folder that does not exist before any work is done."""
    if path is not None and not path.expanduser().absolute().parent.is_dir():
        raise HrmMlxError(f"{option} {path}: folder {path.expanduser().absolute().parent} does not exist")


class Records:
    """The JSON of one command: ``emit(record)`` prints it as one line on stdout (``--json``) and writes it to the
    ``--out`` file, both flushed at once, so a reader (or an interruption) sees every record emitted so far. The
    file is replaced from the first record on: a command that fails before it has one leaves an existing file
    as it was."""

    def __init__(self, to_stdout: bool, out: Path | None):
        check_folder("--out", out)
        self.to_stdout, self.out = to_stdout, out
        self._files = ExitStack()
        self._handle = None

    def __enter__(self) -> "Records":
        return self

    def emit(self, record: dict) -> None:
        line = json.dumps(record)
        if self.out is not None and self._handle is None:
            from hrm_mlx import atomic

            self._handle = self._files.enter_context(atomic.lines(self.out.expanduser()))
        # the file first: a reader who saw a line on stdout (and then interrupts) finds it in the file too
        if self._handle is not None:
            self._handle.write(line + "\n")
            self._handle.flush()
        if self.to_stdout:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def __exit__(self, *exc) -> bool:
        self._files.close()
        return False
