"""Training speed of the default MADE on binarized mnist5k while other processes keep the cores
busy, with OpenMP's active and passive waiting, in one run (ratios, not absolute timings).

    python benchmarks/thread_contention.py [--hogs 2] [--steps 20]

Each setting trains in a fresh process (OMP_WAIT_POLICY is read when torch is first imported)
for ``--steps`` steps after 5 warm-up steps, while ``--hogs`` pure-Python busy loops run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

CHILD = r"""
import os, sys, time
import torch
import dgm
torch.set_num_threads(int(sys.argv[1]))
ds = dgm.load_dataset("mnist5k", transforms=["binarize"])
torch.manual_seed(0)
model = dgm.build("made", data=ds)
opt = torch.optim.AdamW(model.parameters(), 1e-3)
batches = iter(ds.loader("train", 128, shuffle=True))
steps = int(sys.argv[2])
for i in range(steps + 5):
    if i == 5:
        start = time.perf_counter()
    loss = model.loss(next(batches).x)["loss"]
    opt.zero_grad()
    loss.backward()
    opt.step()
print(steps / (time.perf_counter() - start))
"""


def steps_per_second(threads: int, policy: str, steps: int) -> float:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(threads), str(steps)], env=env, capture_output=True, text=True
    )
    if out.returncode:
        raise SystemExit(out.stderr)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    for hogs in sorted({0, args.hogs}):
        loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(hogs)]
        try:
            for threads, policy in ((1, "ACTIVE"), (2, "ACTIVE"), (2, "PASSIVE")):
                rate = steps_per_second(threads, policy, args.steps)
                print(
                    f"busy loops {hogs}  threads {threads}  OMP_WAIT_POLICY={policy:<8} {rate:6.1f} steps/s", flush=True
                )
        finally:
            for loop in loops:
                loop.kill()


if __name__ == "__main__":
    main()
