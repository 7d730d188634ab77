"""Training: the official HRM/TRM recipe in MLX, resumable and data-parallel.

Semantics (HRM pretrain.py, TRM alike): every optimizer step runs ONE ACT step of the whole batch on a persistent
carry; rows that halted take fresh examples (deep supervision: one loss and one update per segment). The loss
(LM + 0.5 Q-halt [+ 0.5 Q-continue]) is scaled by 1 / global_batch_size; AdamATan2 updates the weights, SignSGD
the puzzle-embedding rows of the batch; both follow the linear-warmup + cosine schedule; TRM recipes keep an EMA of
the weights, used for evaluation and the saved model. The whole step is one ``mx.compile``d function over the
model, optimizer and training state (mlx-lm's ``partial(mx.compile, inputs=state, outputs=state)`` pattern).

Data parallel (``mlx.launch -n N hrm-mlx train ...``): every rank draws the same global batch and keeps its slice;
gradients are summed over ranks (each rank's loss is already divided by the *global* batch size, so the sum is
the official gradient); the puzzle-embedding gradients are gathered and summed per id; rank 0 reports and saves.

A run directory holds ``config.json`` (the resolved config), ``metrics.jsonl``, ``checkpoints/step_N/``
(weights, optimizer, EMA, carry, data position and RNG state; written to a temporary folder and renamed, then
``checkpoints/latest`` is replaced atomically), the final model folder ``model/`` (``hrm_mlx.io`` format) and
``curves.png``. This package never prints: it reports to a typed callback (``callbacks``).

Modules: ``config`` (recipes, typed settings, overrides, schedule), ``trainer`` (the step), ``loop`` (the run),
``callbacks``, ``checkpoints``, ``evaluate`` (test metrics, ``hrm-mlx eval``) and ``distributed`` (collectives).
"""

from hrm_mlx.train.callbacks import EvalCallback, RunStart, RunSummary, TrainCallback
from hrm_mlx.train.checkpoints import latest_checkpoint, load_checkpoint, save_checkpoint
from hrm_mlx.train.config import RunConfig, TrainConfig, load_recipe, model_config, resolve_config, schedule
from hrm_mlx.train.evaluate import evaluate, evaluate_model
from hrm_mlx.train.loop import init_weights_from, plot_metrics, prepare_run_dir, save_model, train
from hrm_mlx.train.trainer import Trainer, to_mx

__all__ = ["EvalCallback", "RunConfig", "RunStart", "RunSummary", "TrainCallback", "TrainConfig", "Trainer", "evaluate",
           "evaluate_model", "init_weights_from", "latest_checkpoint", "load_checkpoint",
           "load_recipe", "model_config", "plot_metrics", "prepare_run_dir", "resolve_config", "save_checkpoint",
           "save_model", "schedule", "to_mx", "train"]
