"""A FLARE surrogate for 2-D Darcy flow, trained end to end on data this script makes itself.

The PDE (as in the FNO/FLARE Darcy benchmark): -div(a(x) grad u(x)) = 1 on the unit square, u = 0 on the
boundary. The coefficient a is piecewise constant, 12 or 3, from thresholding a Gaussian random field
(covariance (-Laplacian + 9)^-2, drawn with an FFT). Each field is solved on a grid x grid mesh by a 5-point
finite-volume scheme (harmonic face averages) with scipy.sparse.linalg.spsolve.

FLARE sees every mesh point as a token with features (x, y, a) and predicts u at every point: FlareModel
(in_proj, FLARE blocks, out_proj) as in the official code, trained with AdamW, a one-cycle schedule (warm-up,
cosine decay) and gradient clipping, then evaluated on held-out fields. The official init (every Linear
N(0, 0.02^2)) learns slowly at first: in a budget of a few minutes it stays at the best pointwise fit, so this
example starts from LeCun-normal weights instead (--init official for the official one). It prints the relative
L2 error of the training and test sets next to the mean-field baseline (predicting the training mean of u
everywhere) and saves a PNG of coefficient / truth / prediction / error for the best, median and worst test field.

Defaults run in a few minutes on a 2-core CPU; for better accuracy train longer and bigger, e.g.
    python examples/flare_darcy.py --grid 32 --train 1000 --epochs 100 --channels 64 --blocks 4 --latents 64
Needs scipy and matplotlib (pip install -e ".[cpu,examples]").
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import hrm_mlx  # noqa: F401  (first: preloads the fast BLAS before mlx.core)
import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np
from mlx.utils import tree_flatten

from hrm_mlx.models.flare import FlareModel, Linear

# -- data -----------------------------------------------------------------------------------------------------


def random_coefficients(count: int, grid: int, rng: np.random.Generator, alpha: float = 2.0,
                        tau: float = 3.0) -> np.ndarray:
    """Piecewise-constant coefficient fields [count, grid, grid]: 12 where a Gaussian random field with
    covariance (-Laplacian + tau^2)^-alpha is >= 0, else 3."""
    k = np.fft.fftfreq(grid, d=1.0 / grid)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    spectrum = (4 * math.pi**2 * k2 + tau**2) ** (-alpha / 2)
    spectrum[0, 0] = 0.0  # zero mean
    noise = rng.standard_normal((count, grid, grid)) + 1j * rng.standard_normal((count, grid, grid))
    field = np.fft.ifft2(noise * spectrum, axes=(1, 2)).real
    return np.where(field >= 0, 12.0, 3.0)


def solve_darcy(a: np.ndarray, forcing: float = 1.0) -> np.ndarray:
    """-div(a grad u) = forcing on the unit square with u = 0 outside the grid x grid interior points (spacing
    h = 1/(grid+1)): 5-point finite volumes with harmonic means of a on the faces."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    n = a.shape[0]
    h = 1.0 / (n + 1)
    index = np.arange(n * n).reshape(n, n)
    rows, cols, vals = [], [], []
    diag = np.zeros((n, n))
    for axis in (0, 1):
        for shift in (1, -1):
            neighbour = np.roll(a, -shift, axis=axis)
            face = 2 * a * neighbour / (a + neighbour)
            inside = np.ones((n, n), dtype=bool)
            edge = [slice(None)] * 2
            edge[axis] = -1 if shift == 1 else 0
            inside[tuple(edge)] = False
            face = np.where(inside, face, a)  # boundary face: the cell's own coefficient (u = 0 beyond)
            diag += face
            nb = np.roll(index, -shift, axis=axis)
            rows.append(index[inside])
            cols.append(nb[inside])
            vals.append(-face[inside])
    rows.append(index.ravel())
    cols.append(index.ravel())
    vals.append(diag.ravel())
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n * n, n * n))
    return spsolve(A / h**2, np.full(n * n, forcing)).reshape(n, n)


def make_dataset(count: int, grid: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients [count, grid, grid] and solutions [count, grid, grid]."""
    a = random_coefficients(count, grid, np.random.default_rng(seed))
    return a, np.stack([solve_darcy(field) for field in a])


# -- model inputs ----------------------------------------------------------------------------------------------


class Normaliser:
    """Point features (x, y, standardised a) and targets relative to the training mean field: the network predicts
    (u - mean_u(x)) / std, where mean_u is the pointwise mean of the training solutions (as FNO's pointwise
    Gaussian normaliser) and std one global scale, so an untrained model already predicts the mean field."""

    def __init__(self, a_train: np.ndarray, u_train: np.ndarray):
        self.a_mean, self.a_std = a_train.mean(), a_train.std()
        self.u_mean = mx.array(u_train.mean(axis=0).reshape(-1).astype(np.float32))
        self.u_std = float((u_train - u_train.mean(axis=0)).std())

    def features(self, a: np.ndarray) -> mx.array:
        count, n, _ = a.shape
        coords = (np.arange(n) + 1) / (n + 1)
        xx, yy = np.meshgrid(coords, coords, indexing="ij")
        xy = np.broadcast_to(np.stack([xx, yy], -1).reshape(1, n * n, 2), (count, n * n, 2))
        a_std = ((a - self.a_mean) / self.a_std).reshape(count, n * n, 1)
        return mx.array(np.concatenate([xy, a_std], axis=-1).astype(np.float32))

    def targets(self, u: np.ndarray) -> mx.array:
        return mx.array(u.reshape(u.shape[0], -1).astype(np.float32))

    def decode(self, out: mx.array) -> mx.array:
        return out[..., 0] * self.u_std + self.u_mean


def relative_l2(pred: mx.array, true: mx.array) -> mx.array:
    """Per-sample ||pred - true|| / ||true|| over the points."""
    return mx.sqrt(mx.sum((pred - true) ** 2, axis=-1) / mx.sum(true**2, axis=-1))


# -- training --------------------------------------------------------------------------------------------------


def evaluate(model, norm: Normaliser, x: mx.array, u: mx.array, batch: int) -> tuple[float, mx.array]:
    preds = []
    for i in range(0, x.shape[0], batch):
        preds.append(norm.decode(model(x[i:i + batch])))
        mx.eval(preds[-1])
    pred = mx.concatenate(preds)
    return mx.mean(relative_l2(pred, u)).item(), pred


def train(args) -> None:
    t0 = time.perf_counter()
    a, u = make_dataset(args.train + args.test, args.grid, args.seed)
    print(f"data: {args.train} + {args.test} Darcy fields on a {args.grid}x{args.grid} grid "
          f"({args.grid ** 2} tokens each), solved in {time.perf_counter() - t0:.1f} s")
    norm = Normaliser(a[:args.train], u[:args.train])
    x_train, x_test = norm.features(a[:args.train]), norm.features(a[args.train:])
    u_train, u_test = norm.targets(u[:args.train]), norm.targets(u[args.train:])

    mx.random.seed(args.seed)
    model = FlareModel(3, 1, channel_dim=args.channels, num_blocks=args.blocks, num_heads=args.heads,
                       num_latents=args.latents)
    if args.init == "lecun":
        lecun_init(model)
    params = sum(v.size for _, v in tree_flatten(model.parameters()))
    steps_per_epoch = args.train // args.batch
    total = steps_per_epoch * args.epochs
    warmup = max(1, int(0.1 * total))
    schedule = optim.join_schedules([optim.linear_schedule(args.lr * 1e-2, args.lr, warmup),
                                     optim.cosine_decay(args.lr, total - warmup, args.lr * 1e-3)], [warmup])
    optimizer = optim.AdamW(learning_rate=schedule, weight_decay=args.weight_decay)
    baseline = mx.mean(relative_l2(mx.broadcast_to(norm.u_mean, u_test.shape), u_test)).item()
    print(f"mean-field baseline (training mean of u everywhere): test relative L2 {baseline:.4f}")
    print(f"model: FLARE C={args.channels}, {args.blocks} blocks, H={args.heads}, M={args.latents} per head, "
          f"{params:,} parameters; {args.epochs} epochs x {steps_per_epoch} steps of batch {args.batch}")

    def loss_fn(model, x, u):
        if args.loss == "mse":  # on the standardised deviation from the mean field
            return mx.mean((model(x)[..., 0] - (u - norm.u_mean) / norm.u_std) ** 2)
        return mx.mean(relative_l2(norm.decode(model(x)), u))  # the official training loss

    grad_fn = nn.value_and_grad(model, loss_fn)
    state = [model.state, optimizer.state]

    @partial_compile(state)
    def step(x, u):
        loss, grads = grad_fn(model, x, u)
        grads, _ = optim.clip_grad_norm(grads, 1.0)
        optimizer.update(model, grads)
        return loss

    rng = np.random.default_rng(args.seed + 1)
    t_train = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(args.train)
        losses = []
        for i in range(steps_per_epoch):
            idx = mx.array(order[i * args.batch:(i + 1) * args.batch])
            loss = step(x_train[idx], u_train[idx])
            mx.eval(state, loss)
            losses.append(loss.item())
        if epoch == 0 or (epoch + 1) % args.log_every == 0 or epoch + 1 == args.epochs:
            test_err, _ = evaluate(model, norm, x_test, u_test, args.batch * 4)
            print(f"epoch {epoch + 1:3d}  train {args.loss} loss {np.mean(losses):.4f}  test rel-L2 {test_err:.4f}  "
                  f"({time.perf_counter() - t_train:.0f} s)", flush=True)

    train_err, _ = evaluate(model, norm, x_train, u_train, args.batch * 4)
    test_err, pred = evaluate(model, norm, x_test, u_test, args.batch * 4)
    per_sample = np.array(relative_l2(pred, u_test))
    print(f"\nrelative L2 error: train {train_err:.4f}, test {test_err:.4f} (test median {np.median(per_sample):.4f}, "
          f"worst {per_sample.max():.4f}; mean-field baseline {baseline:.4f}) over {args.test} held-out fields; "
          f"training {time.perf_counter() - t_train:.0f} s, total {time.perf_counter() - t0:.0f} s")
    picture(args.out, a[args.train:], u[args.train:], np.array(pred).reshape(-1, args.grid, args.grid), per_sample)
    print(f"picture: {args.out}")


def lecun_init(model) -> None:
    """Every Linear weight N(0, 1/fan_in) (biases stay 0; norms and latent queries keep the official init)."""
    for _, module in model.named_modules():
        if isinstance(module, Linear):
            module.weight = mx.random.normal(module.weight.shape) / math.sqrt(module.weight.shape[1])


def partial_compile(state):
    """mx.compile of a training step whose model and optimizer state are updated in place."""
    return lambda fn: mx.compile(fn, inputs=state, outputs=state)


def picture(path: Path, a: np.ndarray, u: np.ndarray, pred: np.ndarray, errors: np.ndarray, rows: int = 3) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picks = [int(i) for i in np.argsort(errors)[[0, len(errors) // 2, -1]][:rows]]  # best, median, worst
    fig, axes = plt.subplots(len(picks), 4, figsize=(12, 3 * len(picks)))
    for row, i in zip(np.atleast_2d(axes), picks):
        vmin, vmax = u[i].min(), u[i].max()
        panels = ((a[i], "coefficient a", "viridis", None), (u[i], "truth u", "magma", (vmin, vmax)),
                  (pred[i], "FLARE prediction", "magma", (vmin, vmax)), (pred[i] - u[i], "error", "coolwarm", None))
        for ax, (img, title, cmap, lim) in zip(row, panels):
            if title == "error":
                m = np.abs(img).max()
                lim = (-m, m)
            im = ax.imshow(img.T, origin="lower", cmap=cmap, vmin=lim[0] if lim else None,
                           vmax=lim[1] if lim else None)
            ax.set_title(f"{title}" + (f" (rel-L2 {errors[i]:.3f})" if title == "FLARE prediction" else ""),
                         fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    p = argparse.ArgumentParser(description="Train a FLARE surrogate on generated 2-D Darcy flow data.")
    p.add_argument("--grid", type=int, default=16, help="mesh points per side (tokens = grid^2)")
    p.add_argument("--train", type=int, default=500, help="training fields")
    p.add_argument("--test", type=int, default=100, help="held-out fields")
    p.add_argument("--epochs", type=int, default=24)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--channels", type=int, default=32)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--latents", type=int, default=16, help="latents per head")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--loss", choices=("mse", "rel"), default="mse",
                   help="mse of the standardised deviation from the mean field, or relative L2 (official)")
    p.add_argument("--init", choices=("lecun", "official"), default="lecun", help="Linear weight init")
    p.add_argument("--log-every", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("flare_darcy.png"), help="picture of predictions (PNG)")
    train(p.parse_args())


if __name__ == "__main__":
    main()
