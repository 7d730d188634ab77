"""The README's layout section matches the tree: every path it names exists, and every module of the package is
named there (by its path, or by its name in the entry of the folder that holds it)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def layout_entries() -> dict[str, str]:
    """{path named at the start of a line: the text of its entry, continuation lines included}."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^## Layout\n+```\n(.*?)\n```", text, re.S | re.M).group(1)
    entries: dict[str, str] = {}
    paths: list[str] = []
    for line in block.splitlines():
        if line and not line[0].isspace():
            column, *rest = re.split(r"\s{2,}", line, maxsplit=1)
            paths = [p.strip() for p in column.split(",")]
            for path in paths:
                entries[path] = " ".join(rest)
        else:
            for path in paths:
                entries[path] += " " + line.strip()
    return entries


def test_every_path_the_layout_names_exists():
    entries = layout_entries()
    assert len(entries) > 20
    missing = [path for path in entries if not (ROOT / path).exists()]
    assert missing == []


def test_every_module_of_the_package_is_in_the_layout():
    entries = layout_entries()
    text = " ".join(f"{path} {entry}" for path, entry in entries.items())
    folders = sorted((path for path in entries if path.endswith("/")), key=len, reverse=True)
    unnamed = []
    for module in sorted((ROOT / "hrm_mlx").rglob("*.py")):
        relative = module.relative_to(ROOT).as_posix()
        if module.name in ("__init__.py", "__main__.py") or relative in text:
            continue
        holder = next((folder for folder in folders if relative.startswith(folder)), None)
        if holder is None or not re.search(rf"\b{re.escape(module.stem)}\b", entries[holder]):
            unnamed.append(relative)
    assert unnamed == []
