"""Dev-only: regenerate tests/fixtures/runs/tiny-74cebbb, a run written by an older hrm-mlx.

The older version (default: commit 74cebbb, the code that trained the maze-think and sudoku-think runs) is
exported with ``git archive`` and runs a tiny maze recipe (a 3x3 convolution mixer, so its model folder has the
old top-level mixer options) for 12 steps with a checkpoint every 3. The fixture keeps that run as it was at step
9 (config.json, metrics up to step 9, checkpoint step 9 as the latest), the old version's checkpoint at step 12
(``expected_step_12``) and its final model folder (``model``). tests/test_compatibility.py resumes the run with
the current code and expects the same arrays at step 12, and loads the model folder.

    python tools/make_run_fixture.py [--commit 74cebbb]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = {
    "recipe": "tiny", "task": "maze",
    "model": {"family": "trm", "H_cycles": 1, "L_cycles": 2, "H_layers": 0, "L_layers": 1, "hidden_size": 16,
              "expansion": 2, "num_heads": 2, "pos_encodings": "rope", "halt_max_steps": 3,
              "halt_exploration_prob": 0.3, "puzzle_emb_ndim": 16, "puzzle_emb_len": 1, "forward_dtype": "float32",
              "mixer": "conv"},
    "train": {"global_batch_size": 8, "steps": 12, "lr": 3e-3, "lr_warmup_steps": 3, "lr_min_ratio": 0.1,
              "weight_decay": 0.1, "puzzle_emb_lr": 1e-2, "puzzle_emb_weight_decay": 0.1, "ema": True,
              "ema_rate": 0.9, "log_every": 2, "eval_every": 6, "checkpoint_every": 3, "eval_examples": 8,
              "keep_checkpoints": 4, "data": {"n_train": 24, "n_test": 8, "size": 5, "canvas": 5, "min_path": 3}},
}
# mx.compile off: the arrays then come from MLX's own kernels, not from JIT-built ones, which depend on the compiler
# flags (this version builds with -march=native: FMA contraction) and on whichever build of a kernel of the same name
# the shared cache $TMPDIR/mlx already holds; the test resumes the run the same way and compares bit for bit.
EAGER = {"MLX_DISABLE_COMPILE": "1"}
RUN = """
import json, sys
import hrm_mlx
assert hrm_mlx.__file__.startswith(sys.argv[4]), hrm_mlx.__file__
from hrm_mlx import train as training
recipe = json.loads(sys.argv[1])
training.train(training.resolve_config(recipe), sys.argv[2], cache_dir=sys.argv[3])
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default="74cebbb")
    args = parser.parse_args()
    out = ROOT / "tests" / "fixtures" / "runs" / f"tiny-{args.commit}"
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.commit, "hrm_mlx"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        run = Path(tmp) / "run"
        subprocess.run([sys.executable, "-c", RUN, json.dumps(RECIPE), str(run), str(Path(tmp) / "data"), str(old)],
                       check=True, cwd=tmp, env={"PYTHONPATH": str(old), "PATH": "/usr/bin:/bin", **EAGER})
        shutil.rmtree(out, ignore_errors=True)
        (out / "run" / "checkpoints").mkdir(parents=True)
        shutil.copy(run / "config.json", out / "run" / "config.json")
        lines = [line for line in (run / "metrics.jsonl").read_text().splitlines() if json.loads(line)["step"] <= 9]
        (out / "run" / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
        shutil.copytree(run / "checkpoints" / "step_00000009", out / "run" / "checkpoints" / "step_00000009")
        (out / "run" / "checkpoints" / "latest.json").write_text(json.dumps({"step": 9, "name": "step_00000009"}))
        shutil.copytree(run / "checkpoints" / "step_00000012", out / "expected_step_12")
        shutil.copytree(run / "model", out / "model")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
