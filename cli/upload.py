"""``hrm-mlx upload``: a model folder onto the Hugging Face Hub."""

from pathlib import Path

import typer

from hrm_mlx.cli import output
from hrm_mlx.cli.render import console


def upload(
    folder: Path = typer.Argument(..., metavar="FOLDER", help="Model folder to publish (config.json, safetensors, "
                                  "README.md card; as written by train, convert or the shipped weights/)."),
    repo: str = typer.Argument(..., metavar="REPO", help="Hugging Face model repo id, owner/name; created when it "
                               "does not exist."),
    private: bool = typer.Option(False, "--private", help="Create the repo as private (an existing repo keeps its "
                                                          "visibility)."),
    message: str = typer.Option(None, "--message", metavar="TEXT", show_default="Upload <FAMILY> model with hrm-mlx",
                                help="Commit message."),
    as_json: bool = typer.Option(False, "--json", help="Print the folder, repo and URL as one JSON object on stdout."),
    out: Path = typer.Option(None, "--out", metavar="FILE", help=output.OUT_HELP),
) -> None:
    """Upload a model folder to the Hugging Face Hub in one commit; its card's usage block names the repo.
    Needs a token with write access (`hf auth login` or HF_TOKEN)."""
    from hrm_mlx import publish

    output.check_folder("--out", out)
    url = publish.upload(folder, repo, private=private, message=message)
    with output.Records(as_json, out) as records:
        records.emit({"folder": str(folder), "repo": repo, "url": str(url)})
    if not as_json:
        console.print(f"uploaded {folder} to {repo}: {url}", markup=False)


def register(app: typer.Typer) -> None:
    app.command(epilog=output.EXIT_CODES)(upload)
