"""The autoregressive family on mnist5k: test NLL of every model after the same wall-clock
training budget, in one ``dgm compare`` table, from the command line::

    dgm train MODEL --data mnist5k --transform binarize --minutes 4 --epochs 1000 --patience 30 --out RUNS/MODEL
    dgm compare RUNS/*

each model with its own training defaults (NADE: lr 0.01, batch 64; FVSBN: batch 32), and the
PixelCNN with a discretized logistic mixture on 8-bit mnist5k (bits/dim). Runs train one after another with both cores (``--threads``); runs that exist are reused::

    .venv/bin/python benchmarks/autoregressive_mnist5k.py --runs runs/ar --minutes 4   # ~35 minutes
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

BINARIZED = ("--data", "mnist5k", "--transform", "binarize")
MODELS: dict[str, tuple[str, ...]] = {
    "fvsbn": ("fvsbn", *BINARIZED),
    "made": ("made", *BINARIZED),
    "nade": ("nade", *BINARIZED),
    "pixelcnn": ("pixelcnn", *BINARIZED),
    "gated_pixelcnn": ("gated_pixelcnn", *BINARIZED),
    "transformer": ("transformer", *BINARIZED),
    "pixelcnn_8bit": ("pixelcnn", "--data", "mnist5k"),
}


def dgm_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("dgm")), *args]


def run(command: list[str], log: Path, threads: int) -> None:
    print("$", " ".join(command[1:]), flush=True)
    with open(log, "a") as out:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(command, check=True, stdout=out, stderr=out, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=Path("runs/ar"))
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    args = parser.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    names = [name for name in args.models.split(",") if name]
    for name in names:
        out = args.runs / name
        model, *extra = MODELS[name]
        if not (out / "model.safetensors").exists():
            budget = ("--minutes", str(args.minutes), "--epochs", "1000", "--patience", "30")
            run(
                dgm_command("train", model, *extra, *budget, "--out", str(out)), args.runs / f"{name}.log", args.threads
            )
    table = args.runs / "compare.md"
    run(dgm_command("compare", *(str(args.runs / n) for n in names), "--md", str(table)), args.runs / "compare.log", 2)
    print(table.read_text())


if __name__ == "__main__":
    main()
