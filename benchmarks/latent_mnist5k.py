"""The latent-variable benchmark on binarized mnist5k: the VAEs' test ELBO and importance-weighted
NLL (k = 1 000) beside MADE's exact NLL, the autoencoders' linear-probe accuracy and the FD-digits
of VAE samples, every model trained with one wall-clock budget::

    dgm train MODEL --data mnist5k --transform binarize --minutes M --epochs 1000 --patience 20 \\
        [--set ...] --out RUNS/MODEL
    dgm eval RUNS/MODEL -m nll,fd,probe -k 1000     # VAEs (nll for MADE, probe for autoencoders)
    dgm compare RUNS/*

The validation loss picks the kept weights (early stopping with patience 20 epochs). Runs that
exist are reused; two train at a time with one thread each::

    .venv/bin/python benchmarks/latent_mnist5k.py --runs runs/latent --minutes 10   # ~45 minutes
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MODELS: dict[str, tuple[str, ...]] = {
    "vae": ("vae",),
    "beta_vae": ("beta_vae",),
    "iwae": ("iwae",),
    "vae_iaf": ("vae", "--set", "posterior=iaf"),
    "ae": ("ae",),
    "dae": ("dae",),
    "cae": ("cae",),
    "made": ("made",),
}
DATA = ("--data", "mnist5k", "--transform", "binarize")


def dgm_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("dgm")), *args]


def run(command: list[str], log: Path) -> None:
    print("$", " ".join(command[1:]), flush=True)
    with open(log, "a") as out:
        subprocess.run(command, check=True, stdout=out, stderr=out, env={**os.environ, "OMP_NUM_THREADS": "1"})


def train_and_eval(name: str, runs: Path, minutes: float, k: int) -> None:
    """Train run ``name`` unless it exists, then evaluate what applies to it."""
    out = runs / name
    model, *extra = MODELS[name]
    if not (out / "model.safetensors").exists():
        budget = ("--minutes", str(minutes), "--epochs", "1000", "--patience", "20")
        run(dgm_command("train", model, *DATA, *budget, *extra, "--out", str(out)), runs / f"{name}.log")
    if model in ("vae", "beta_vae", "iwae"):
        run(dgm_command("eval", str(out), "-m", "nll,fd,probe", "-k", str(k)), runs / f"{name}.log")
    elif model == "made":
        run(dgm_command("eval", str(out), "-m", "nll"), runs / f"{name}.log")
    else:
        run(dgm_command("eval", str(out), "-m", "probe"), runs / f"{name}.log")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=Path("runs/latent"))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of every run")
    parser.add_argument("-k", type=int, default=1000, help="importance samples of the NLL bound")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once (one thread each)")
    args = parser.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda name: train_and_eval(name, args.runs, args.minutes, args.k), args.models))
    subprocess.run(dgm_command("compare", *(str(args.runs / name) for name in args.models)), check=True)


if __name__ == "__main__":
    main()
