"""``hrm-mlx convert``: an official PyTorch checkpoint (or a model folder) into a model folder."""

from pathlib import Path

import typer

from hrm_mlx import tasks
from hrm_mlx.cli import output
from hrm_mlx.cli.render import console, key_value_table
from hrm_mlx.errors import HrmMlxError

SRC_HELP = ("A checkpoint folder: official HRM/TRM ('checkpoint' or the highest 'step_<N>' torch.save file, "
            "all_config.yaml beside it; also a whole run tree of the official TRM trainer or its reproductions) or "
            "a nano-trm run (its Lightning .ckpt); a single such file; a Hugging Face repo id such as "
            "sapientinc/HRM-checkpoint-sudoku-extreme or Sanjin2024/TinyRecursiveModels-Sudoku-Extreme-mlp; or a model "
            "folder to re-save with another dtype or shard size.")
CONFIG_HELP = ("Architecture when all_config.yaml is missing or to override it: an all_config.yaml, a JSON/YAML "
               "file with the arch fields, or a recipe name such as hrm-arc-1.")


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def convert(
    src: str = typer.Argument(..., metavar="SRC", help=SRC_HELP),
    out: Path = typer.Argument(..., metavar="OUT", help="Model folder to write (config.json + safetensors); "
                               "replaced atomically."),
    dtype: str = typer.Option(None, "--dtype", metavar="DTYPE", show_default="as stored in the checkpoint",
                              help="Store floating weights as float32, bfloat16 or float16."),
    config: str = typer.Option(None, "--config", metavar="CONFIG", help=CONFIG_HELP),
    task: str = typer.Option(None, "--task", metavar="TASK", show_default="from data_path or the vocabulary size",
                             help=f"{', '.join(tasks.names())}."),
    seq_len: int = typer.Option(None, "--seq-len", min=1, metavar="N", help="Sequence length, when neither the "
                                "weights nor the task tell it."),
    identifiers: Path = typer.Option(None, "--identifiers", metavar="FILE", help="The data set's identifiers.json "
                                     "(puzzle names of the ARC embeddings), stored with the model."),
    revision: str = typer.Option(None, "--revision", metavar="REV", help="Hub revision (branch, tag or commit) of "
                                 "a repo id."),
    max_shard_size: str = typer.Option("2GB", "--max-shard-size", metavar="SIZE", help="Largest safetensors file; "
                                       "bigger models are sharded."),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as one JSON object on stdout."),
    json_out: Path = typer.Option(None, "--out", metavar="FILE", help=output.OUT_HELP + " The model folder is OUT."),
) -> None:
    """Convert an HRM or TRM checkpoint (official, a reproduction's, nano-trm's; PyTorch, read without torch) into
    an MLX model folder."""
    from hrm_mlx import io

    if dtype is not None and dtype not in io.folders.DTYPES:
        raise HrmMlxError(f"--dtype must be one of {', '.join(io.folders.DTYPES)}, not {dtype!r}")
    output.check_folder("--out", json_out)
    summary = io.convert(src, out, dtype=dtype, config=config, task=task, seq_len=seq_len, identifiers=identifiers,
                         revision=revision, max_shard_size=io.parse_size(max_shard_size))
    with output.Records(as_json, json_out) as records:
        records.emit(summary)
    if as_json:
        return
    files = summary["files"]
    shards = [f for f in files if f.startswith("model-")]
    listed = ", ".join(f for f in files if f not in shards) + (f", {len(shards)} weight shards" if shards else "")
    rows = {
        "source": summary["source"],
        "output": summary["output"],
        "model": f"{summary['family']}" + (f", task {summary['task']}" if summary["task"] else ""),
        "parameters": f"{summary['params']:,} ({summary['trainable_params']:,} trained by the optimizer)",
        "dtype": ", ".join(summary["dtypes"]),
        "size": f"{_size(summary['bytes'])} ({listed})",
    }
    if summary["notes"]:
        rows["notes"] = "; ".join(summary["notes"])
    console.print(key_value_table("hrm-mlx convert", rows))


def register(app: typer.Typer) -> None:
    app.command(epilog=output.EXIT_CODES)(convert)
