"""Samplers of one trained diffusion run side by side: FD-digits, time per image and a sample grid
for each of DDPM with 1 000 steps and DDIM with 50, 20 and 10 steps at eta 0 and 1 (or the
``--configs`` given, ``SAMPLER:STEPS[:ETA]``).

Every sampler starts from the same seed and draws ``--n`` images (for a conditional run, the
labels of the test split in order, as ``dgm eval`` does); FD-digits is computed in the shipped
digit classifier's features against the test split, exactly as ``dgm eval RUN -m fd`` does.
Time per image is wall-clock on this machine, in batches of up to 1 000::

    dgm train ddpm --data mnist5k --set conditional=true --minutes 30 --out runs/ddpm-mnist5k
    .venv/bin/python benchmarks/diffusion_samplers.py runs/ddpm-mnist5k --n 500 --figures docs/images/diffusion
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import dgm
from dgm.eval.features import feature_space, image_sample_metrics
from dgm.eval.suite import eval_labels
from dgm.runs import load_dataset_of
from dgm.sampling import draw_samples
from dgm.viz.figures import plot_image_grid

CONFIGS = ("ddpm:1000", "ddim:50:0", "ddim:20:0", "ddim:10:0", "ddim:50:1", "ddim:20:1", "ddim:10:1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--n", type=int, default=500, help="images per sampler")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), help="SAMPLER:STEPS or ddim:STEPS:ETA")
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figures", type=Path, help="save a grid of 64 of the images (every class) per sampler here")
    args = parser.parse_args()

    model = dgm.load(args.run)
    dataset = load_dataset_of(args.run)
    space = feature_space(dataset.raw_info)
    real = dataset.to_display(dataset.transformed("test", seed=args.seed)[0])
    labels = eval_labels(model, dataset, "test", args.n)
    rows = []
    for config in args.configs:
        sampler, steps, *eta = config.split(":")
        options = {"sampler": sampler, "steps": int(steps), "guidance": args.guidance}
        if eta:
            options["eta"] = float(eta[0])
        start = time.perf_counter()
        samples = draw_samples(model, args.n, args.seed, cond=labels, options=options)
        seconds = (time.perf_counter() - start) / args.n
        shown = dataset.to_display(samples)
        fd = image_sample_metrics(real, shown, space, include=["fd"])
        key, entry = next(iter(fd.items()))
        rows.append((config, entry["value"], seconds))
        print(f"{config}: {key} {entry['value']:.2f}, {seconds:.3f} s/image", flush=True)
        if args.figures:
            args.figures.mkdir(parents=True, exist_ok=True)
            title = (
                f"{sampler.upper()}, {steps} steps{f', eta {eta[0]}' if eta else ''}: FD-digits {entry['value']:.1f}"
            )
            spread = torch.linspace(0, args.n - 1, min(64, args.n)).round().long()  # every class
            plot_image_grid(shown[spread], args.figures / f"samples_{config.replace(':', '_')}.png", title=title)
    print(f"\n| sampler:steps[:eta] | FD-digits (n = {args.n}) | s / image |")
    print("|---|---|---|")
    for config, fd, seconds in rows:
        print(f"| {config} | {fd:.2f} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
