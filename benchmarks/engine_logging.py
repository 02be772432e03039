"""What logging costs the engine: training steps per second of a small GAN on toy data with the
training terms logged on every batch, against on the batches the loggers write (every 10, what
dgm does), in one process, alternating, on one thread::

    .venv/bin/python benchmarks/engine_logging.py --steps 1000 --repeats 3

Measured (2026-12-01, one thread, beside one other training job): best of three, 205 steps/s
logging every batch, 324 logging every 10: 1.58x.
"""

from __future__ import annotations

import argparse
import time

import torch

import dgm
from dgm.train import fit
from dgm.train.config import TrainConfig
from dgm.train.module import GenerativeTask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = dgm.load_dataset("toy2d:gmm8?n=64000&n_test=500")
    config = TrainConfig(steps=args.steps, batch_size=64, keep="last", eval_samples=8)
    written = GenerativeTask._logger_writes
    rates = {"every batch": [], "every 10 batches": []}
    for _ in range(args.repeats):
        for mode in rates:
            GenerativeTask._logger_writes = (lambda self: True) if mode == "every batch" else written
            start = time.perf_counter()
            run = fit(dgm.build("gan", data=data), data, config, out="/tmp/engine_logging", overwrite=True, log=print)
            train_s = dgm.runs.read_metrics(run)["train_time"]["value"]
            rates[mode].append(args.steps / train_s)
            print(f"{mode}: {args.steps / train_s:.1f} steps/s ({time.perf_counter() - start:.1f} s with evaluation)")
    GenerativeTask._logger_writes = written
    for mode, values in rates.items():
        print(f"{mode}: best {max(values):.1f} steps/s over {len(values)} runs")
    print(f"ratio: {max(rates['every 10 batches']) / max(rates['every batch']):.2f}x")


if __name__ == "__main__":
    main()
