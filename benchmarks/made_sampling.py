"""MADE's sequential sampling: the incremental sampler (``cached=True``, O(H) per dimension for
one hidden layer) against D whole passes of the network (``cached=False``), on the default MADE
for binarized 28x28 digits (one hidden layer of 1 000 units, direct connections, an ensemble of
8 mask sets), in one process::

    .venv/bin/python benchmarks/made_sampling.py [--n 64] [--repeats 3] [--threads 1]

Prints the time of each, their ratio, and whether the two drew the same samples from the same
generator; then the incremental sampler's time per sample for the MADEs of the docs' tables, on
as many samples as ``dgm eval -m speed`` draws (the test split). Sampling time does not depend
on the weights, so the models are freshly initialised.
"""

from __future__ import annotations

import argparse
import time

import torch

import dgm

TABLE_MADES = (  # the MADEs of the README and docs tables, and the number of test images
    ("binarized mnist5k, default MADE", dgm.DataInfo((1, 28, 28), "binary", 2), {}, 1000),
    (
        "8-bit mnist5k, hidden=64 direct=false output=categorical",
        dgm.DataInfo((1, 28, 28), "discrete", 256),
        {"hidden": (64,), "direct": False, "output": "categorical"},
        1000,
    ),
    ("digits, default MADE", dgm.DataInfo((1, 8, 8), "discrete", 17), {}, 447),
)


def timed(model, n: int, seed: int, cached: bool = True) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    x = model.sample(n, generator=torch.Generator().manual_seed(seed), cached=cached)
    return time.perf_counter() - start, x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="samples per call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = dgm.build("made", data=dgm.DataInfo((1, 28, 28), "binary", 2)).eval()
    ratios = []
    for r in range(args.repeats):
        t_ref, x_ref = timed(model, args.n, seed=r, cached=False)  # D whole passes, the definition
        t_fast, x_fast = timed(model, args.n, seed=r)
        ratios.append(t_ref / t_fast)
        same = torch.equal(x_ref, x_fast)
        print(
            f"repeat {r}: whole passes {t_ref:.2f} s, incremental {t_fast:.3f} s, {ratios[-1]:.1f}x, same samples: {same}"
        )
    print(f"speed-up: {min(ratios):.1f}x to {max(ratios):.1f}x for {args.n} samples on {args.threads} thread(s)")
    for what, info, overrides, n in TABLE_MADES:
        model = dgm.build("made", data=info, **overrides).eval()
        seconds, _ = timed(model, n, seed=0)
        print(f"{what}: {1000 * seconds / n:.2f} ms/sample ({n} samples)")


if __name__ == "__main__":
    main()
