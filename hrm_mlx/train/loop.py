"""The run: a run directory, the loop of steps with evaluations and checkpoints, Ctrl-C, the final model folder
and curves."""

from __future__ import annotations

from io import BytesIO
import json
import signal
import threading
import time
from pathlib import Path

import mlx.core as mx
from mlx.utils import tree_flatten

from hrm_mlx import atomic, tasks
from hrm_mlx import data as datasets
from hrm_mlx.errors import HrmMlxError
from hrm_mlx.train.callbacks import RunStart, RunSummary, TrainCallback
from hrm_mlx.train.checkpoints import (carry_arrays, carry_from, flat_tree, latest_checkpoint, load_checkpoint,
                                       save_checkpoint)
from hrm_mlx.train.config import RunConfig, model_config, schedule
from hrm_mlx.train.distributed import broadcast_json, gather_now
from hrm_mlx.train.evaluate import evaluate
from hrm_mlx.train.trainer import Trainer, to_mx


def init_weights_from(model, source: str) -> None:
    """Start ``model`` from the weights of the model at ``source`` (folder, checkpoint or repo id; see io.load).
    Every parameter must exist there with the same shape: a model trained on small grids can go on to larger
    ones when no parameter depends on the sequence length (e.g. the conv mixer with rope or no positions)."""
    from hrm_mlx import io

    donor, _ = io.load(source)
    ours, theirs = flat_tree(model.parameters()), flat_tree(donor.parameters())
    where = f"train.init_from {source}"
    for key, value in ours.items():
        if key not in theirs:
            raise HrmMlxError(f"{where}: that model has no parameter {key}")
        if theirs[key].shape != value.shape:
            raise HrmMlxError(f"{where}: parameter {key} has shape {tuple(theirs[key].shape)} there but "
                              f"{tuple(value.shape)} here")
    extra = sorted(set(theirs) - set(ours))
    if extra:
        raise HrmMlxError(f"{where}: that model has parameters this one lacks ({extra[0]}, ...)")
    model.load_weights([(key, theirs[key].astype(value.dtype)) for key, value in ours.items()])


def _config_difference(a, b, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            diff = _config_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if diff:
                return diff
        return None
    return None if a == b else f"{prefix[:-1]} ({a!r} here, {b!r} in the run)"


def prepare_run_dir(run_dir: Path, config: RunConfig | None, resume: bool) -> RunConfig:
    """Check the run directory and return the config to use. New run: ``run_dir`` must not hold a run.
    Resume: the directory must hold a run; a given config must equal the saved one (a run saved before a setting
    existed has that setting's default)."""
    saved_path = run_dir / "config.json"
    if resume:
        if not saved_path.is_file():
            raise HrmMlxError(f"{run_dir} is not a training run (no config.json)")
        try:
            saved = RunConfig.from_dict(json.loads(saved_path.read_text()))
        except (OSError, json.JSONDecodeError) as error:
            raise HrmMlxError(f"cannot read {saved_path}: {error}") from None
        except HrmMlxError as error:
            raise HrmMlxError(f"{saved_path}: {error}") from None
        if config is not None:
            diff = _config_difference(config.to_dict(), saved.to_dict())
            if diff:
                raise HrmMlxError(f"{run_dir} was trained with another config: {diff}")
        return saved
    if config is None:
        raise HrmMlxError("no config to train")
    if run_dir.exists() and (saved_path.exists() or (run_dir / "checkpoints").exists()):
        raise HrmMlxError(f"{run_dir} already holds a training run; resume it or choose another run directory")
    if run_dir.exists() and not run_dir.is_dir():
        raise HrmMlxError(f"{run_dir} is a file, not a directory")
    return config


class _Interrupt:
    """SIGINT sets a flag: the loop finishes its step, saves a checkpoint and returns."""

    def __init__(self):
        self.flag = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.flag:  # second Ctrl-C: give up at once
            raise KeyboardInterrupt
        self.flag = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def train(config: RunConfig | None, run_dir: str | Path, *, resume: bool = False,
          callback: TrainCallback | None = None, cache_dir: str | Path | None = None, group=None,
          time_limit: float | None = None) -> RunSummary:
    """Train (or continue) a run. ``config`` is resolve_config()'s result (None to resume with the saved one).
    ``time_limit`` (seconds of this invocation, set-up included) ends the run early like its last step:
    evaluation, checkpoint and model folder, all within the limit (continue it with ``resume``); set-up that takes
    the whole limit leaves no step. Reports to ``callback`` on rank 0."""
    wall_start = time.perf_counter()
    deadline = wall_start + time_limit if time_limit else None
    run_dir = Path(run_dir).expanduser()
    group = group or mx.distributed.init()
    rank0 = group.rank() == 0
    report = (callback or TrainCallback()) if rank0 else TrainCallback()
    if group.size() == 1:
        config = prepare_run_dir(run_dir, config, resume)
    else:  # rank 0 owns the run directory; the others learn its verdict (and, on resume, the config)
        outcome = None
        if rank0:
            try:
                outcome = {"config": prepare_run_dir(run_dir, config, resume).to_dict()}
            except HrmMlxError as error:
                outcome = {"error": str(error)}
        outcome = broadcast_json(outcome, group)
        if "error" in outcome:
            raise HrmMlxError(outcome["error"])
        config = RunConfig.from_dict(outcome["config"])
    settings = config.train
    if settings.global_batch_size % group.size():
        raise HrmMlxError(f"global batch size {settings.global_batch_size} is not a multiple of the "
                          f"{group.size()} ranks")

    task = tasks.get(config.task)
    folder = datasets.build(task, settings.data, cache_dir, progress=report.on_data)
    train_split, test_split = datasets.Split(folder, "train"), datasets.Split(folder, "test")
    meta = train_split.meta
    plan = schedule(settings, meta)
    mconfig = model_config(config, meta)

    from hrm_mlx.models import build

    mx.random.seed(settings.seed)
    model = build(mconfig)
    checkpoint = latest_checkpoint(run_dir) if resume and rank0 else None
    has_checkpoint = broadcast_json(checkpoint is not None, group) if group.size() > 1 else checkpoint is not None
    if settings.init_from and not has_checkpoint:
        init_weights_from(model, settings.init_from)
    trainer = Trainer(model, settings, plan["total_steps"], group, compiled=settings.compile)
    if rank0:  # only now that data and model are known to be good
        run_dir.mkdir(parents=True, exist_ok=True)
        if not resume:
            atomic.write_json(run_dir / "config.json", config.to_dict())
    loader = datasets.TrainLoader(train_split, settings.global_batch_size, settings.seed, plan["epochs_per_iter"],
                                  group.rank(), group.size())
    carry = trainer.initial_carry(meta["seq_len"])
    step, elapsed = 0, 0.0
    if has_checkpoint:
        step, global_carry, loader_state, extra = load_checkpoint(checkpoint, trainer, carry, group)
        lo, hi = group.rank() * trainer.local_batch, (group.rank() + 1) * trainer.local_batch
        carry = carry_from({k: v[lo:hi] for k, v in global_carry.items()})
        loader.load_state(loader_state)
        elapsed = float(extra.get("elapsed", 0.0))
    metrics_path = run_dir / "metrics.jsonl"
    if rank0:
        _truncate_metrics(metrics_path, step)

    n_params = sum(v.size for _, v in tree_flatten(model.trainable_parameters()))
    report.on_start(RunStart(run_dir, step, plan["total_steps"], int(n_params), train_split.num_examples,
                             test_split.num_examples, folder, group.size(), bool(has_checkpoint), trainer.compiled,
                             plan["eval_every"], plan["checkpoint_every"]))

    def log(record: dict) -> None:
        if rank0:
            with open(metrics_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    eval_seconds = None  # how long the last evaluation took

    def run_eval() -> dict:
        nonlocal eval_seconds
        started = time.perf_counter()
        ema = trainer.ema_weights()
        saved = model.trainable_parameters() if ema is not None else None
        if ema is not None:
            model.update(ema)
        result = evaluate(model, test_split, settings.global_batch_size, limit=settings.eval_examples, group=group,
                          compiled=trainer.compiled, deadline=deadline)
        if saved is not None:
            model.update(saved)
        eval_seconds = time.perf_counter() - started
        return result

    def final_work(step_seconds: float) -> float:
        """Seconds the end of a run takes (an evaluation, a checkpoint, the model folder and curves), to stop in
        time for it: the last evaluation's time, or before any an estimate from the step time (an eval batch runs
        halt_max_steps forward passes; a training step is about three: forward and backward), the last
        checkpoint's time, the curves' time (measured in set-up) and two steps' time for the model folder."""
        if eval_seconds is None:
            examples = min(settings.eval_examples or test_split.num_examples, test_split.num_examples)
            batches = -(-examples // settings.global_batch_size)
            evaluation = batches * model.args.halt_max_steps * step_seconds / 3
        else:
            evaluation = eval_seconds
        return evaluation + max(checkpoint_seconds, step_seconds) + plot_seconds + 2 * step_seconds

    checkpoint_seconds = 0.0  # how long the last checkpoint took

    def checkpoint_now() -> None:
        nonlocal checkpoint_seconds
        started = time.perf_counter()
        gathered = {k: gather_now(v, group) for k, v in carry_arrays(carry).items()}
        if rank0:
            path = save_checkpoint(run_dir, step, trainer, carry_from(gathered), loader.state(),
                                   {"elapsed": elapsed, "world_size": group.size()}, keep=settings.keep_checkpoints)
            report.on_checkpoint(step, path)
        checkpoint_seconds = time.perf_counter() - started

    window = _Window()
    interrupted = timed_out = False
    last_eval = None
    first_step = step
    plot_seconds = _seconds_to_plot() if deadline is not None and rank0 else 0.0
    setup_seconds = time.perf_counter() - wall_start
    if deadline is not None:  # the set-up (data, model) may have used the whole limit
        timed_out = broadcast_json(time.perf_counter() >= deadline, group) if group.size() > 1 else \
            time.perf_counter() >= deadline
    with _Interrupt() as interrupt:
        while step < plan["total_steps"] and not timed_out:
            started = time.perf_counter()
            batch = to_mx(loader.next())
            carry, metrics = trainer.step(step + 1, carry, batch)
            step += 1
            seconds = time.perf_counter() - started
            elapsed += seconds
            window.add(metrics, seconds, trainer.global_batch)
            out_of_time = deadline is not None and time.perf_counter() + final_work(seconds) >= deadline
            if group.size() > 1:
                out_of_time = broadcast_json(out_of_time, group)
            last = step == plan["total_steps"] or out_of_time
            if step % settings.log_every == 0 or last:
                record = window.flush(step, trainer.lrs(step)[0], trainer.global_batch)
                remaining = plan["total_steps"] - step
                record["eta_s"] = remaining / record["steps_per_s"] if record["steps_per_s"] else None
                log({"split": "train", **record})
                report.on_log(record)
            if step % plan["eval_every"] == 0 or last:
                last_eval = run_eval()
                log({"split": "eval", "step": step, **last_eval})
                report.on_eval(step, last_eval)
            stop = broadcast_json(interrupt.flag, group) if group.size() > 1 else interrupt.flag
            if step % plan["checkpoint_every"] == 0 or last or stop:
                checkpoint_now()
            if stop:
                interrupted = True
                break
            if out_of_time:
                timed_out = True
                break

    summary = RunSummary(run_dir, step, plan["total_steps"], interrupted, timed_out, last_eval, elapsed,
                         setup_s=setup_seconds, steps_now=step - first_step)
    if rank0 and step > first_step:  # also when interrupted: the model and curves of the checkpoint just saved
        summary.model_dir = save_model(run_dir / "model", trainer, mconfig, config, folder, last_eval, step=step,
                                       total_steps=plan["total_steps"])
        summary.plot = plot_metrics(metrics_path, run_dir / "curves.png")
    summary.wall_s = time.perf_counter() - wall_start
    report.on_done(summary)
    return summary


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop the metric lines written after the checkpoint (they will be written again)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step]
    atomic.write_file(path, "".join(line + "\n" for line in keep))


class _Window:
    """Training metrics summed over the steps since the last log line."""

    def __init__(self):
        self.sums, self.steps, self.seconds = {}, 0, 0.0

    def add(self, metrics: dict, seconds: float, batch: int) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.item())
        self.steps += 1
        self.seconds += seconds

    def flush(self, step: int, lr: float, batch: int) -> dict:
        s, n = self.sums, max(self.steps, 1)
        count = max(s.get("count", 0.0), 1.0)
        record = {
            "step": step,
            "loss": s.get("loss", 0.0) / n,
            "lm_loss": s.get("lm_loss", 0.0) / (n * batch),
            "q_halt_loss": s.get("q_halt_loss", 0.0) / (n * batch),
            "accuracy": s.get("accuracy", 0.0) / count,
            "exact_accuracy": s.get("exact_accuracy", 0.0) / count,
            "q_halt_accuracy": s.get("q_halt_accuracy", 0.0) / count,
            "steps": s.get("steps", 0.0) / count,
            "halted": int(s.get("count", 0.0)),
            "lr": lr,
            "steps_per_s": self.steps / self.seconds if self.seconds else 0.0,
            "examples_per_s": self.steps * batch / self.seconds if self.seconds else 0.0,
        }
        if "q_continue_loss" in s:
            record["q_continue_loss"] = s["q_continue_loss"] / (n * batch)
        self.sums, self.steps, self.seconds = {}, 0, 0.0
        return record


def save_model(folder: Path, trainer: Trainer, mconfig: dict, config: RunConfig, data_folder: Path,
               last_eval: dict | None = None, step: int | None = None, total_steps: int | None = None) -> Path:
    """The run's model folder (hrm_mlx.io format), with the EMA weights when the recipe keeps an EMA. Its
    config.json also records the data settings, so ``hrm-mlx eval`` finds the same held-out split; its model card
    the last evaluation's exact accuracy on that split and, for a run saved before its end, the step."""
    from hrm_mlx import io, model_card

    model = trainer.model
    ema = trainer.ema_weights()
    saved = model.trainable_parameters() if ema is not None else None
    if ema is not None:
        model.update(ema)
    identifiers = None
    ids_file = Path(data_folder) / "identifiers.json"
    if tasks.get(config.task).named_puzzles and ids_file.is_file():
        identifiers = json.loads(ids_file.read_text())
    extra = {"data": config.train.data.to_dict(), "recipe": config.recipe}
    accuracy = []
    if last_eval and last_eval.get("count"):
        source = tasks.get(config.task).describe_data(config.train.data)
        accuracy.append(model_card.Accuracy(last_eval["exact_accuracy"], "exact accuracy",
                                            f"held-out split of the training data ({source})", int(last_eval["count"])))
    described = {**mconfig, **extra}
    recipe = f" (recipe {config.recipe})" if config.recipe else ""
    stopped = f"Saved at step {step:,} of {total_steps:,}." if step is not None and step != total_steps else ""
    card = model_card.render(
        model_card.metadata(described, accuracy=accuracy),
        model_card.body(described, params=sum(v.size for _, v in tree_flatten(model.parameters())),
                        where=str(folder), accuracy=accuracy,
                        description=" ".join(filter(None, [f"Trained with `hrm-mlx train`{recipe}.", stopped,
                                                           config.description]))))
    try:
        return io.save(model, described, folder, identifiers=identifiers, card=card)
    finally:
        if saved is not None:
            model.update(saved)


def _pyplot():
    """matplotlib.pyplot drawing off-screen, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _seconds_to_plot() -> float:
    """How long drawing the curves takes here: measured after loading the plotting library and its fonts by a first
    drawing (seconds on a busy machine). A run with a time limit does this as set-up, to stop in time for the
    curves at its end."""
    plt = _pyplot()
    if plt is None:
        return 0.0
    sample = [{"split": split, "step": step, "loss": 1.0, "lm_loss": 1.0, "accuracy": 0.5, "exact_accuracy": 0.5}
              for split in ("train", "eval") for step in (1, 2)]
    plt.close(_curves(plt, sample, "set-up"))
    start = time.perf_counter()
    figure = _curves(plt, sample, "set-up")
    figure.savefig(BytesIO(), dpi=110)
    plt.close(figure)
    return time.perf_counter() - start


def _curves(plt, records: list[dict], title: str):
    """The figure of the loss and accuracy curves (train and eval) of metrics.jsonl records."""
    train = [r for r in records if r.get("split") == "train"]
    evals = [r for r in records if r.get("split") == "eval"]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        steps = [r["step"] for r in train]
        ax_loss.plot(steps, [r["loss"] for r in train], label="train loss (total / batch)")
        ax_loss.plot(steps, [r["lm_loss"] for r in train], label="train LM loss", alpha=0.7)
        ax_acc.plot(steps, [r["accuracy"] for r in train], label="train token accuracy", alpha=0.7)
        ax_acc.plot(steps, [r["exact_accuracy"] for r in train], label="train exact accuracy")
    if evals:
        steps = [r["step"] for r in evals]
        ax_acc.plot(steps, [r["accuracy"] for r in evals], "o-", label="eval token accuracy")
        ax_acc.plot(steps, [r["exact_accuracy"] for r in evals], "s-", label="eval exact accuracy")
    ax_loss.set_xlabel("step")
    ax_loss.set_yscale("log")
    ax_loss.legend()
    ax_acc.set_xlabel("step")
    ax_acc.set_ylim(0, 1)
    ax_acc.legend()
    fig.suptitle(f"training curves: {title}")
    fig.tight_layout()
    return fig


def plot_metrics(metrics_path: Path, out: Path) -> Path | None:
    """A PNG of the loss and accuracy curves (train and eval); None when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None:
        return None
    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    fig = _curves(plt, records, metrics_path.parent.name)
    atomic.write_file(out, lambda path: fig.savefig(path, dpi=110))
    plt.close(fig)
    return out
