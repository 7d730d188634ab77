"""The hrm-mlx command line. Commands live in their own modules; this one assembles them and maps errors the
user can cause (HrmMlxError) to a one-line message and exit code 2."""

from __future__ import annotations

import sys

import typer

from hrm_mlx.errors import HrmMlxError

app = typer.Typer(
    name="hrm-mlx",
    help="Recursive reasoning models (HRM, TRM, FLARE) on MLX: solve, train and benchmark puzzle solvers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from hrm_mlx.cli import bench, convert, doctor, eval, solve, train, upload

    for module in (solve, doctor, bench, convert, train, eval, upload):
        module.register(app)


def _show_library_notes() -> None:
    """What the library logs at INFO (e.g. a checkpoint converted on first use) goes to stderr, one line each."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("hrm-mlx: %(message)s"))
    library = logging.getLogger("hrm_mlx")
    library.addHandler(handler)
    library.setLevel(logging.INFO)


def main() -> None:
    _register()
    _show_library_notes()
    try:
        app()
    except HrmMlxError as error:
        sys.stderr.write(f"hrm-mlx: error: {error}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("hrm-mlx: interrupted\n")
        sys.exit(130)
