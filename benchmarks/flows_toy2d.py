"""The toy 2-D flow benchmark: KL(p || q) of gmm, realnvp, maf and nsf on gmm8, checkerboard and
rings, under one budget, and a picture of the learned densities beside the truth. Other models
can join (``--models ddpm nsf``): a bound model's KL is an upper bound (its ELBO for log q).

Every model is trained by the command line with the protocol of docs/flows.md::

    dgm train MODEL --data "toy2d:TARGET?n=1536000" --steps 3000 --batch-size 512 --lr 1e-3 \\
        --lr-schedule cosine --out RUNS/MODEL_TARGET

3 000 Adam steps of batch 512 on a train split of 3 000 x 512 target draws, so every step sees
fresh points (as the reference implementations draw them), with the learning rate annealed
from 1e-3 to 0 (the schedule of Durkan et al. 2019). KL is then :func:`dgm.eval.toy2d.kl_to_target`,
what ``dgm eval RUN -m kl`` reports, over 20 000 fresh target draws (``--draws``). Existing runs are reused::

    .venv/bin/python benchmarks/flows_toy2d.py --runs runs/toy2d --jobs 2   # ~10 minutes on 2 cores
    .venv/bin/python benchmarks/flows_toy2d.py --runs runs/toy2d --figure docs/images/flows/toy2d_densities.png
    .venv/bin/python benchmarks/flows_toy2d.py --runs runs/toy2d --models nsf --seeds 0 1 2 3 4 --jobs 2

With several seeds every run is trained with ``--seed S`` (runs ``MODEL_TARGET`` for seed 0,
``MODEL_TARGET_sS`` otherwise) and each model and target gets a line with the mean and range;
the figure shows the first seed's runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dgm
from dgm.eval.toy2d import kl_to_target
from dgm.runs import read_metrics
from dgm.viz.density import plot_density_table

MODELS = ("gmm", "realnvp", "maf", "nsf")
TARGETS = ("gmm8", "checkerboard", "rings")
PROTOCOL = ("--steps", "3000", "--batch-size", "512", "--lr", "1e-3", "--lr-schedule", "cosine")
# options of models that are not flows, under the same budget: the diffusion model with T = 100
# steps (its bound is tighter than with 1 000 on toy data) and a 33 k-parameter denoiser
MODEL_OPTIONS = {"ddpm": ("--set", "steps=100", "--set", "hidden=64", "--ema", "0.999")}
TRAIN_POINTS = 3000 * 512


def run_dir(runs: Path, model: str, target: str, seed: int) -> Path:
    """Where the run of ``model`` on ``target`` with ``seed`` is (or goes)."""
    return runs / (f"{model}_{target}" if seed == 0 else f"{model}_{target}_s{seed}")


def train(model: str, target: str, run: Path, seed: int = 0) -> None:
    """Train ``model`` on ``target`` into ``run`` with the protocol, unless the run exists."""
    if (run / "model.safetensors").exists():
        return
    dgm_cli = Path(sys.executable).with_name("dgm")
    data = f"toy2d:{target}?n={TRAIN_POINTS}"
    command = [
        str(dgm_cli),
        "train",
        model,
        "--data",
        data,
        *PROTOCOL,
        *MODEL_OPTIONS.get(model, ()),
        "--seed",
        str(seed),
        "--out",
        str(run),
    ]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/toy2d"), help="where the runs are (or go)")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds (default 0)")
    parser.add_argument("--jobs", type=int, default=1, help="trainings at once, one thread each")
    parser.add_argument("--draws", type=int, default=20000, help="target draws per KL (default: dgm eval's)")
    parser.add_argument("--figure", type=Path, help="also save the densities beside the truth here")
    args = parser.parse_args()

    jobs = [(m, t, s) for t in args.targets for m in args.models for s in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda job: train(*job[:2], run_dir(args.runs, *job), job[2]), jobs))

    rows, table, kls = [], [], {}
    for target in args.targets:
        dataset = dgm.load_dataset(f"toy2d:{target}")
        models = []
        for name in args.models:
            for seed in args.seeds:
                run = run_dir(args.runs, name, target, seed)
                model = dgm.load(run)
                estimate = kl_to_target(model, dataset, n=args.draws)
                params = read_metrics(run)["parameters"]["value"]
                table.append((name, target, seed, estimate.kl, estimate.se, params))
                kls.setdefault((name, target), []).append(estimate.kl)
                if seed == args.seeds[0]:
                    models.append((f"{name}: KL {estimate.kl:.2g}", model))
        rows.append((dataset, models))

    print("| model | target | seed | KL(p‖q) nats | ± | parameters |")
    print("|---|---|---|---|---|---|")
    for name, target, seed, kl, se, params in table:
        print(f"| {name} | {target} | {seed} | {kl:.2g} | {se:.1g} | {params:,} |")
    if len(args.seeds) > 1:
        for (name, target), values in kls.items():
            print(
                f"{name} on {target} over seeds {', '.join(map(str, args.seeds))}: mean {statistics.mean(values):.2g}, "
                f"from {min(values):.2g} to {max(values):.2g}"
            )
    if args.figure:
        print("wrote", plot_density_table(rows, args.figure))


if __name__ == "__main__":
    main()
