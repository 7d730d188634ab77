"""``hrm-mlx doctor``: what MLX runs on here, and how fast its matmuls are."""

import json

import typer

from hrm_mlx.cli.render import console, key_value_table


def doctor(
    size: int = typer.Option(2048, help="Matrix size of the sgemm measurement (size x size float32)."),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON instead of a table."),
) -> None:
    """Show platform, MLX version, device, the BLAS in use and a measured sgemm GFLOP/s."""
    from hrm_mlx import runtime

    runtime.configure()
    from hrm_mlx import bench

    info = bench.environment()
    info["sgemm_gflops"] = round(bench.sgemm_gflops(size), 1)
    if as_json:
        print(json.dumps(info))
        return
    console.print(key_value_table("hrm-mlx doctor", info))
    if info["blas"] == "reference":
        console.print("[yellow]MLX is on its slow reference BLAS: pip install 'hrm-mlx[cpu]' (MKL) or "
                      "apt-get install libopenblas0-pthread[/yellow]")


def register(app: typer.Typer) -> None:
    app.command()(doctor)
