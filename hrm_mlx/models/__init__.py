"""Model families. ``build(config)`` makes a model from a config.json dict whose "family" names its module."""

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import hrm

FAMILIES = {"hrm": hrm}


def build(config: dict):
    family = config.get("family", "hrm")
    if family not in FAMILIES:
        raise HrmMlxError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    module = FAMILIES[family]
    return module.Model(module.ModelArgs.from_dict(config))
