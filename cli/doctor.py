"""``hrm-mlx doctor``: what MLX runs on here, and how fast its matmuls are."""

from pathlib import Path

import typer

from hrm_mlx.cli import output
from hrm_mlx.cli.render import console, key_value_table


def doctor(
    size: int = typer.Option(2048, "--size", min=64, metavar="N", help="Matrix size of the sgemm measurement (N x N "
                             "float32)."),
    as_json: bool = typer.Option(False, "--json", help=output.JSON_HELP),
    out: Path = typer.Option(None, "--out", metavar="FILE", help=output.OUT_HELP),
) -> None:
    """Show platform, MLX version, device, the BLAS in use and a measured sgemm GFLOP/s."""
    from hrm_mlx import runtime

    runtime.configure()
    from hrm_mlx import bench

    with output.Records(as_json, out) as records:
        info = bench.environment()
        info["sgemm_gflops"] = round(bench.sgemm_gflops(size), 1)
        records.emit(info)
    if as_json:
        return
    console.print(key_value_table("hrm-mlx doctor", info))
    if info["blas"] == "reference":
        console.print("[yellow]MLX is on its slow reference BLAS: pip install 'hrm-mlx[cpu]' (MKL) or "
                      "apt-get install libopenblas0-pthread[/yellow]")


def register(app: typer.Typer) -> None:
    app.command(epilog=output.EXIT_CODES)(doctor)
