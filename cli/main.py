"""The hrm-mlx command line. Commands live in their own modules; this one assembles them and maps errors the
user can cause (HrmMlxError) to a one-line message and exit code 2 (hrm_mlx.cli.output: the exit codes and the
--json/--out convention of every command).

Only the module of the command being run is imported: its options' help lists the tasks, which imports numpy
and every task module. ``hrm-mlx --help`` imports none of them: it lists each command with the first paragraph
of its function's docstring, read from the module's source."""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import os
import sys

import typer

from hrm_mlx.cli.output import BAD_INPUT, EXIT_CODES, INTERRUPTED
from hrm_mlx.errors import HrmMlxError

# command name -> (module in hrm_mlx.cli, function), in the order of the help listing
COMMANDS = {"solve": ("solve", "solve"), "doctor": ("doctor", "doctor"), "bench": ("bench", "bench"),
            "convert": ("convert", "convert"), "train": ("train", "train"), "eval": ("eval", "evaluate"),
            "upload": ("upload", "upload")}

app = typer.Typer(
    name="hrm-mlx",
    help="Recursive reasoning models (HRM, TRM, FLARE) on MLX: solve, train and benchmark puzzle solvers.",
    epilog=f"{EXIT_CODES} --json prints JSON on stdout in every command; --out FILE writes it to FILE (train: "
           "--out is the run folder, whose metrics.jsonl holds the records).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: each option with its value's word (MODEL, N, FILE), wrapped to the terminal
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        from hrm_mlx import __version__

        print(f"hrm-mlx {__version__}")
        raise typer.Exit()


@app.callback()
def _group(version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                        help="Show the version and exit.")) -> None:
    # A callback keeps the app a group of commands when only the one being run is registered (Typer would
    # otherwise run a lone command as the program itself).
    pass


def _summary(module: str, function: str) -> str:
    """The first paragraph of a command function's docstring, without importing its module."""
    source = importlib.util.find_spec(f"hrm_mlx.cli.{module}").origin
    with open(source, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    return " ".join((ast.get_docstring(node) or "").split("\n\n")[0].split())


def _register(argv: list[str] | None = None) -> None:
    """Every command (``argv`` None), else the one ``argv`` names; without one (help, or an unknown name),
    every command as a summary line for the listing."""
    name = next((arg for arg in argv if not arg.startswith("-")), None) if argv is not None else None
    if argv is None or name in COMMANDS:
        for module, _ in ([COMMANDS[name]] if argv is not None else COMMANDS.values()):
            importlib.import_module(f"hrm_mlx.cli.{module}").register(app)
        return
    for command, (module, function) in COMMANDS.items():
        app.command(command, help=_summary(module, function))(lambda: None)


@contextlib.contextmanager
def _library_notes_on_stderr():
    """While a command runs, what the library logs at INFO (e.g. a checkpoint converted on first use) goes to
    stderr, one line each. Undone after: in-process callers (tests, notebooks) swap and close sys.stderr between
    commands, and outside the CLI the library never prints."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hrm-mlx: %(message)s"))
    library = logging.getLogger("hrm_mlx")
    previous_level = library.level
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    try:
        yield
    finally:
        library.removeHandler(handler)
        library.setLevel(previous_level)


def _check_environment() -> None:
    """MLX keeps its compiled kernels under $TMPDIR: a TMPDIR that is no writable folder fails deep inside MLX."""
    folder = os.environ.get("TMPDIR")
    if folder and not os.path.isdir(folder):
        raise HrmMlxError(f"TMPDIR={folder} is not a folder (MLX keeps its compiled kernels there): create it or "
                          "unset TMPDIR")
    if folder and not os.access(folder, os.W_OK | os.X_OK):
        raise HrmMlxError(f"TMPDIR={folder} is not writable (MLX keeps its compiled kernels there): choose another "
                          "folder or unset TMPDIR")


def _tidy_help(command) -> None:
    """Help names an argument by its metavar only (recent Typer also prints its Python type, <list[Path]>)."""
    for param in command.params:
        if param.param_type_name == "argument" and hasattr(param, "display_type_rich"):
            param.display_type_rich = lambda ctx: None
    for sub in getattr(command, "commands", {}).values():
        _tidy_help(sub)


def _command():
    """The app as the click command it runs as, its help tidied."""
    command = typer.main.get_command(app)
    _tidy_help(command)
    return command


def main() -> None:
    with _library_notes_on_stderr():
        try:
            _register(sys.argv[1:])  # imports the command's module: the first second of a run, Ctrl-C included
            if {"--help", "--version"}.isdisjoint(sys.argv[1:]) and len(sys.argv) > 1:
                _check_environment()
            _command()(prog_name="hrm-mlx")
        except HrmMlxError as error:
            sys.stderr.write(f"hrm-mlx: error: {error}\n")
            sys.exit(BAD_INPUT)
        except KeyboardInterrupt:  # outside a command (a command's own interruption exits 130 through Typer)
            sys.stderr.write("hrm-mlx: interrupted\n")
            sys.exit(INTERRUPTED)
