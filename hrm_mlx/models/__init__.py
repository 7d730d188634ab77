"""Model families. ``build(config)`` makes a model from a config.json dict whose "family" names its module.

Every family's ``Model`` extends ``recursive.RecursiveModel`` and runs in act.py's ACT loop; it also has
``sanitize(state_dict)`` (official names to ours) and ``flops_per_step(batch_size)``."""

from hrm_mlx.errors import HrmMlxError
from hrm_mlx.models import hrm, trm

FAMILIES = {"hrm": hrm, "trm": trm}


def build(config: dict):
    family = config.get("family", "hrm")
    if family not in FAMILIES:
        raise HrmMlxError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    module = FAMILIES[family]
    return module.Model(module.ModelArgs.from_dict(config))
