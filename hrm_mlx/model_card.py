"""Model cards: the README.md of every model folder hrm-mlx writes, with the YAML header the Hugging Face Hub reads.

The header follows mlx-lm's ``create_model_card``: ``library_name: mlx``, the tags ``mlx`` and ``hrm-mlx`` plus
the model family and task, ``base_model`` (the Hub repo a converted model came from), ``license`` and, when a
model's accuracy was measured, a ``model-index`` entry with the number and what it was measured on. The text
below it says what the model is, where its weights came from and how to use it; its usage block sits between
markers so ``hrm-mlx upload`` can name the repo it is published as (as mlx-lm's ``upload_to_hub`` rewrites the
card). Folders carry the card from ``hrm_mlx.io.save`` on (trained, converted and shipped models alike).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hrm_mlx import tasks
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.tasks.base import Task

CARD_FILE = "README.md"
LIBRARY_NAME = "mlx"
OWN_LICENSE = "apache-2.0"  # hrm-mlx's license: models it trains or ships carry it
UNKNOWN_LICENSE = "unknown"  # the Hub's value when the source of a converted model declares none
_USE_START, _USE_END = "<!-- hrm-mlx:use -->", "<!-- /hrm-mlx:use -->"


def _title(task: str | None) -> str | None:
    """The task in words, for a task hrm-mlx knows."""
    return tasks.get(task).title if task in tasks.names() else None


@dataclass
class Accuracy:
    """One measured number for the card's model-index: ``value`` in [0, 1] (share of puzzles), ``metric`` what
    counts (e.g. "exact accuracy"), ``dataset`` what it was measured on, ``count`` how many puzzles."""

    value: float
    metric: str
    dataset: str
    count: int | None = None


@dataclass
class Provenance:
    """Where a converted model's weights came from: a Hub repo (``repo``, ``revision``) or a local path, the
    checkpoint file inside it, and its layout."""

    path: str
    repo: str | None = None
    revision: str | None = None
    file: str | None = None
    layout: str | None = None
    notes: list[str] = field(default_factory=list)


def metadata(config: dict, *, base_model: str | None = None, license: str | None = None,
             accuracy: list[Accuracy] = (), name: str | None = None):
    """The card's YAML header as huggingface_hub.ModelCardData."""
    from huggingface_hub import EvalResult, ModelCardData

    family = config.get("family", "hrm")
    task = (config.get("task") or {}).get("name")
    tags = ["mlx", "hrm-mlx", family, *([task] if task else []), *(["flare"] if config.get("mixer") == "flare" else [])]
    results = [EvalResult(task_type=task or "other", task_name=_title(task) or "puzzle solving",
                          # The Hub merges results whose task, dataset type and config agree (not the name):
                          # the name as config keeps each data set its own result.
                          dataset_type="puzzles", dataset_name=a.dataset, dataset_config=a.dataset,
                          metric_type="accuracy",
                          metric_value=round(float(a.value), 4), metric_name=a.metric) for a in accuracy]
    return ModelCardData(library_name=LIBRARY_NAME, tags=tags, base_model=base_model, license=license or OWN_LICENSE,
                         # the model-index entry's name; the Hub reads it only beside results
                         model_name=(name or f"hrm-mlx-{family}-{task or 'model'}") if results else None,
                         eval_results=results or None)


def usage(where: str, task: str | None) -> str:
    """The usage block: solve an example and load the model in Python, from ``where`` (a repo id or a folder)."""
    example = tasks.get(task).example if task in tasks.names() else Task.example
    return "\n".join([
        _USE_START, "## Use", "", "```bash", "pip install hrm-mlx", f"hrm-mlx solve {example} --model {where}",
        "```", "", "```python", "import hrm_mlx", "", f'model, config = hrm_mlx.load("{where}")', "```",
        _USE_END])


def body(config: dict, *, params: int | None = None, where: str = ".", provenance: Provenance | None = None,
         accuracy: list[Accuracy] = (), description: str | None = None) -> str:
    """The card's Markdown text."""
    family = config.get("family", "hrm").upper()
    task = (config.get("task") or {}).get("name")
    lines = [f"# {family} {(_title(task) or 'model').lower()} for MLX", ""]
    lines += [description or f"A {family} recursive reasoning model{f' for {_title(task)}' if _title(task) else ''} "
              "in hrm-mlx's model folder format (config.json + safetensors, for Apple's MLX).", ""]
    facts = [f"{params:,} parameters" if params else None,
             f"H_cycles {config.get('H_cycles')}, L_cycles {config.get('L_cycles')}, "
             f"hidden {config.get('hidden_size')}, up to {config.get('halt_max_steps')} ACT steps",
             f"token mixer {'mlp_t' if config.get('mlp_t') else config.get('mixer', 'attention')}"]
    lines += ["- " + "; ".join(f for f in facts if f), ""]
    if provenance is not None:
        source = f"[{provenance.repo}](https://huggingface.co/{provenance.repo})" if provenance.repo else \
            f"`{provenance.path}`"
        detail = ", ".join(x for x in (f"revision `{provenance.revision}`" if provenance.revision else None,
                                       f"file `{provenance.file}`" if provenance.file else None,
                                       provenance.layout) if x)
        lines += ["## Source", "", f"Converted with `hrm-mlx convert` from {source}" + (f" ({detail})" if detail
                                                                                          else "") + "."]
        if provenance.notes:
            lines += ["", "What the converter inferred:", ""] + [f"- {note}" for note in provenance.notes]
        lines += [""]
    if accuracy:
        lines += ["## Accuracy", "", "| metric | value | measured on |", "|---|---|---|"]
        lines += [f"| {a.metric} | {100 * a.value:.1f}% | {a.dataset}{f' ({a.count} puzzles)' if a.count else ''} |"
                  for a in accuracy]
        lines += [""]
    lines += [usage(where, task), ""]
    return "\n".join(lines)


def render(data, text: str) -> str:
    """A whole card: the YAML header, then the text."""
    return f"---\n{data.to_yaml()}\n---\n\n{text.strip()}\n"


def read(folder: str | Path):
    """The card of a model folder as huggingface_hub.ModelCard, or None when it has none."""
    from huggingface_hub import ModelCard

    path = Path(folder) / CARD_FILE
    if not path.is_file():
        return None
    try:
        return ModelCard(path.read_text(encoding="utf-8"), ignore_metadata_errors=True)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise HrmMlxError(f"{path}: unreadable model card ({' '.join(str(error).split())})") from None


def source_license(folder: Path) -> str | None:
    """The license a Hub repo's own card declares (what a converted model inherits), if it has one."""
    card = read(folder) if folder.is_dir() else None
    license = card.data.license if card is not None else None
    return license if isinstance(license, str) and license else None


def default(config: dict, *, params: int | None, where: str) -> str:
    """The card of a model folder nobody described further (hrm_mlx.io.save's default)."""
    return render(metadata(config), body(config, params=params, where=where))


def for_repo(card, repo: str) -> str:
    """The text of ``card`` (a huggingface_hub.ModelCard) with its usage block naming ``repo``: what
    ``hrm-mlx upload`` publishes."""
    tags = card.data.tags or []
    block = usage(repo, next((t for t in tasks.names() if t in tags), None))
    text = str(card)
    if _USE_START in text and _USE_END in text:
        start, end = text.index(_USE_START), text.index(_USE_END) + len(_USE_END)
        return text[:start] + block + text[end:]
    return text.rstrip() + "\n\n" + block + "\n"
