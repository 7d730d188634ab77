"""``hrm-mlx upload``: publish a model folder as a Hugging Face Hub model repo, as mlx-lm's ``upload_to_hub`` does
(create the repo if needed, a card that names it, every file of the folder), in one commit."""

from __future__ import annotations

from pathlib import Path

from hrm_mlx.errors import HrmMlxError


def _api():
    """The Hub client (tests replace this)."""
    from huggingface_hub import HfApi

    return HfApi()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__


def upload(folder: str | Path, repo: str, *, private: bool = False, message: str | None = None) -> str:
    """Upload every file of the model folder ``folder`` to the model repo ``repo`` (created when missing), with a
    README.md whose usage block names ``repo`` (the folder's own card is left as it is). Returns the commit URL."""
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    from hrm_mlx import io, model_card

    folder = Path(folder).expanduser()
    try:
        validate_repo_id(repo)
    except HFValidationError:
        raise HrmMlxError(f"{repo}: not a Hugging Face repo id (owner/name)") from None
    if "/" not in repo:
        raise HrmMlxError(f"{repo}: name the owner too (owner/name)")
    config = io.validate_folder(folder)
    card = model_card.read(folder)
    if card is None:
        from huggingface_hub import ModelCard

        card = ModelCard(model_card.default(config, params=None, where=repo))
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in
                                                                           p.relative_to(folder).parts))
    operations = [CommitOperationAdd(path_in_repo=p.relative_to(folder).as_posix(), path_or_fileobj=str(p))
                  for p in files if p.relative_to(folder).as_posix() != model_card.CARD_FILE]
    operations.append(CommitOperationAdd(path_in_repo=model_card.CARD_FILE,
                                         path_or_fileobj=model_card.for_repo(card, repo).encode("utf-8")))
    api = _api()
    try:
        api.create_repo(repo_id=repo, repo_type="model", private=private, exist_ok=True)
        info = api.create_commit(repo_id=repo, repo_type="model", operations=operations,
                                 commit_message=message or f"Upload {config.get('family', 'hrm').upper()} model "
                                                           "with hrm-mlx")
    except Exception as error:  # noqa: BLE001 - the hub's and network errors become one line
        name, module = type(error).__name__, type(error).__module__
        if not (module.startswith(("huggingface_hub", "httpx", "requests")) or isinstance(error, OSError)):
            raise
        if name in ("LocalTokenNotFoundError",) or "401" in str(error) or "403" in str(error):
            raise HrmMlxError(f"{repo}: not allowed to write there (log in with `hf auth login` or set HF_TOKEN "
                              f"with write access; {name})") from None
        if name == "OfflineModeIsEnabled":
            raise HrmMlxError(f"{repo}: cannot upload while HF_HUB_OFFLINE is set") from None
        raise HrmMlxError(f"{repo}: upload to the Hugging Face Hub failed ({name}: {_one_line(error)})") from None
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/{repo}")
