"""The training step of one rank: model, optimizers, training state and the compiled step."""

from __future__ import annotations

from functools import partial

import mlx.core as mx
from mlx.utils import tree_map

from hrm_mlx import optim, speed
from hrm_mlx.models import act
from hrm_mlx.train.distributed import all_sum_tree, gather


class Trainer:
    """Model, optimizers, training state and the (compiled) step of one rank."""

    def __init__(self, model, train: dict, total_steps: int, group, compiled: bool = True):
        self.model = model
        self.train = train
        self.total_steps = total_steps
        self.group = group
        self.world, self.rank = group.size(), group.rank()
        self.global_batch = train.global_batch_size
        self.local_batch = self.global_batch // self.world
        self.optimizer = optim.AdamATan2(learning_rate=0.0, betas=(train.beta1, train.beta2),
                                         weight_decay=train.weight_decay)
        self.optimizer.init(model.trainable_parameters())
        self.tstate = {"key": mx.random.key(int(train.seed) + 1)}
        if train.ema:
            self.tstate["ema"] = tree_map(lambda p: mx.array(p), model.trainable_parameters())
        self.has_puzzle_emb = "puzzle_emb" in model
        self.state = [model.state, self.optimizer.state, self.tstate]
        self.compiled = compiled
        step = self._step
        self.step_fn = partial(mx.compile, inputs=self.state, outputs=self.state)(step) if compiled else step

    def _loss(self, params, rows, carry, min_halt_steps):
        self.model.update(params)
        loss, (new_carry, _outputs, metrics) = act.training_loss(self.model, carry, rows, min_halt_steps)
        return loss / self.global_batch, new_carry, metrics

    def _gradients(self, params, rows, carry, min_halt):
        """((loss, metrics, parameter gradients), (new carry, puzzle-row gradients or None)): the parts that
        add up over rows, and the parts that are per row."""
        if rows is not None:
            (loss, carry, metrics), (grads, row_grads) = mx.value_and_grad(self._loss, argnums=(0, 1))(
                params, rows, carry, min_halt)
            return (loss, metrics, grads), (carry, row_grads)
        (loss, carry, metrics), grads = mx.value_and_grad(self._loss)(params, rows, carry, min_halt)
        return (loss, metrics, grads), (carry, None)

    def _step(self, carry, batch, lr, emb_lr):
        model, train = self.model, self.train
        least = carry.get("think_at_least")
        carry = act.reset_halted(model, carry, batch)
        ids = carry["puzzle_identifiers"]
        rows = model.puzzle_rows(ids)
        key, sub = mx.random.split(self.tstate["key"])
        min_halt = act.exploration(self.global_batch, model.args.halt_exploration_prob, model.args.halt_max_steps,
                                   key=sub)
        if train.think_at_least:  # a row draws its least number of steps when it starts (step 0 after the reset)
            key, sub = mx.random.split(key)
            draw = mx.random.randint(train.think_at_least, model.args.halt_max_steps + 1, (self.global_batch,),
                                     key=sub)
            least = mx.where(carry["steps"] == 0, self._mine(draw), least)
        self.tstate["key"] = key
        min_halt = self._mine(min_halt)
        if least is not None:
            min_halt = mx.maximum(min_halt, least)
        params = model.trainable_parameters()
        groups = speed.row_groups(self.local_batch)
        if groups > 1:  # the same sums over rows, one row group per core (hrm_mlx.speed)
            parts = speed.by_row_groups(partial(self._gradients, params), groups, rows, carry, min_halt)
            (loss, metrics, grads), (carry, row_grads) = (speed.sum_groups([p[0] for p in parts]),
                                                          speed.join_rows([p[1] for p in parts]))
        else:
            (loss, metrics, grads), (carry, row_grads) = self._gradients(params, rows, carry, min_halt)
        metrics = dict(metrics, loss=loss)
        if least is not None:
            carry["think_at_least"] = least
        if self.world > 1:
            grads = all_sum_tree(grads, self.group)
            metrics = all_sum_tree(metrics, self.group)
        self.optimizer.learning_rate = lr
        self.optimizer.update(model, grads)
        if rows is not None:
            all_ids, all_grads = gather(ids, self.group), gather(row_grads, self.group)
            model.puzzle_emb.weight = optim.sign_sgd_rows(model.puzzle_emb.weight, all_ids, all_grads, emb_lr,
                                                          train.puzzle_emb_weight_decay)
        if "ema" in self.tstate:
            self.tstate["ema"] = optim.ema_update(self.tstate["ema"], model.trainable_parameters(),
                                                  train.ema_rate)
        return carry, metrics

    def _mine(self, values: mx.array) -> mx.array:
        """This rank's rows of numbers every rank drew for the global batch."""
        return values if self.world == 1 else values[self.rank * self.local_batch:(self.rank + 1) * self.local_batch]

    def initial_carry(self, seq_len: int) -> dict:
        """A carry of this rank's rows, all halted (the first step loads a whole batch)."""
        dummy = {"inputs": mx.zeros((self.local_batch, seq_len), dtype=mx.int32),
                 "labels": mx.zeros((self.local_batch, seq_len), dtype=mx.int32),
                 "puzzle_identifiers": mx.zeros((self.local_batch,), dtype=mx.int32)}
        carry = act.initial_carry(self.model, dummy)
        if self.train.think_at_least:
            carry["think_at_least"] = mx.zeros((self.local_batch,), dtype=mx.int32)
        return carry

    def lrs(self, step: int) -> tuple[float, float]:
        t = self.train
        return (optim.lr_at(step, t.lr, t.lr_warmup_steps, self.total_steps, t.lr_min_ratio),
                optim.lr_at(step, t.puzzle_emb_lr, t.lr_warmup_steps, self.total_steps, t.lr_min_ratio))

    def step(self, step: int, carry: dict, batch: dict):
        """Optimizer step number ``step`` (from 1). Returns (carry, metrics) with metrics evaluated."""
        lr, emb_lr = self.lrs(step)
        carry, metrics = self.step_fn(carry, batch, mx.array(lr, dtype=mx.float32),
                                      mx.array(emb_lr, dtype=mx.float32))
        mx.eval(carry, metrics, self.state)
        return carry, metrics

    def ema_weights(self):
        return self.tstate.get("ema")


def to_mx(batch: dict) -> dict:
    return {k: mx.array(v) for k, v in batch.items()}
