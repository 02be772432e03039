"""The GAN toy benchmark: modes covered (of 25) and high-quality fraction on ``grid25`` for each
loss, and for the non-saturating loss with and without each stabilising trick, over three seeds
(mean ± spread, the spread being half the range), under one budget.

Every run is trained by the command line with the same protocol::

    dgm train gan --data "toy2d:grid25?n=2560000" --steps 20000 --batch-size 256 --lr 1e-3 \\
        --seed S [--set OPTION=VALUE | --ema 0.999] --out RUNS/NAME-sS

20 000 optimizer steps (10 000 discriminator and 10 000 generator steps; WGAN-GP takes 5 critic
steps per generator step, so 16 667 and 3 333) of batch 256 on a train split of 10 000 x 256
target draws, so every batch is fresh, with Adam (beta1 0.5, the GAN default) at 1e-3. The
figures are those of the evaluation at the end of each run (``dgm eval RUN -m modes``): 2 000
samples, a mode covered when at least a fifth of its share of high-quality samples, those
within 3 std of it, lands there (after VEEGAN, Srivastava et al. 2017). Existing runs are reused::

    .venv/bin/python benchmarks/gan_toy2d.py --runs runs/gan-grid25 --jobs 2   # ~1 hour on 2 cores
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dgm.runs import read_metrics

PROTOCOL = ("--steps", "20000", "--batch-size", "256", "--lr", "1e-3")
DATA = "toy2d:grid25?n=2560000"
SEEDS = (0, 1, 2)
# name -> options; the first five compare the losses, the rest the tricks on the non-saturating one
CONFIGS: dict[str, tuple[str, ...]] = {
    "minimax (saturating)": ("--set", "loss=minimax"),
    "non-saturating": (),
    "wasserstein-gp": ("--set", "loss=wasserstein-gp"),
    "hinge": ("--set", "loss=hinge"),
    "least-squares": ("--set", "loss=least-squares"),
    "+ one-sided label smoothing 0.1": ("--set", "label_smoothing=0.1"),
    "+ label flipping p = 0.05": ("--set", "label_flip=0.05"),
    "+ instance noise 0.1 -> 0 over 5 000 D steps": ("--set", "instance_noise=0.1", "--set", "noise_steps=5000"),
    "+ dropout 0.3 in D": ("--set", "dropout=0.3"),
    "+ TTUR (G at 2.5e-4, D at 1e-3)": ("--set", "lr_generator=2.5e-4"),
    "+ spectral normalisation in D": ("--set", "spectral_norm=true"),
    "+ EMA of the weights (0.999)": ("--ema", "0.999"),
}


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.split("(")[0].strip(" +")).strip("-")[:40]


def train(name: str, seed: int, runs: Path) -> Path:
    """Train one configuration with one seed into RUNS, unless the run exists."""
    run = runs / f"{slug(name)}-s{seed}"
    if (run / "metrics.json").exists() and "modes_covered" in read_metrics(run):
        return run
    dgm_cli = Path(sys.executable).with_name("dgm")
    command = [str(dgm_cli), "train", "gan", "--data", DATA, *PROTOCOL, "--seed", str(seed), *CONFIGS[name]]
    command += ["--out", str(run), "--overwrite"]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return run


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and half the range."""
    return sum(values) / len(values), (max(values) - min(values)) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/gan-grid25"))
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once (one thread each)")
    parser.add_argument("--only", nargs="*", help="configuration names to run (default: all)")
    args = parser.parse_args()
    names = [n for n in CONFIGS if not args.only or n in args.only]
    jobs = [(name, seed) for name in names for seed in SEEDS]
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = dict(zip(jobs, pool.map(lambda job: train(*job, args.runs), jobs), strict=True))
    print("\n| grid25, 3 seeds | modes covered (of 25) | high-quality fraction |")
    print("|---|---|---|")
    for name in names:
        metrics = [read_metrics(runs[(name, seed)]) for seed in SEEDS]
        modes = spread([m["modes_covered"]["value"] for m in metrics])
        hq = spread([m["hq_fraction"]["value"] for m in metrics])
        print(f"| {name} | {modes[0]:.1f} ± {modes[1]:.1f} | {hq[0]:.2f} ± {hq[1]:.2f} |")


if __name__ == "__main__":
    main()
