"""dgm's diffusion UNet against diffusers' UNet2DModel: training steps per second, FLOPs per step
and the fraction of the machine's float32 matmul throughput, side by side in one run.

diffusers is installed for this benchmark only (it is not a dependency of dgm)::

    .venv/bin/pip install --no-deps diffusers huggingface_hub requests httpx2 httpcore2 h11 truststore urllib3 certifi

    .venv/bin/python benchmarks/unet_speed.py                 # one torch thread, 60 steps of each
    .venv/bin/python benchmarks/unet_speed.py --threads 2     # both cores
    .venv/bin/python benchmarks/unet_speed.py --classes 10    # with class labels

A training step is forward + MSE against a random target + backward + Adam step (lr 1e-4), on a
batch of 64 images 1x28x28 drawn from N(0, 1), timesteps uniform in [0, 1000) (floats), and with
``--classes K`` labels uniform in 0..K-1; both networks get the same batches.

- dgm: ``dgm.nn.unet.unet_for((1, 28, 28))`` (``--dgm 32,64,64``), i.e. ``UNet(1, 1, channels=32,
  mults=(1, 2, 2), blocks=1)``: levels 28, 14, 7 of 32, 64, 64 channels, one ResBlock per level and
  side, attention in the middle at 7x7, 688 705 parameters; and the same with 96 channels at 7x7
  (``--dgm 32,64,96``, ``mults=(1, 2, 3)``), 1 132 193 parameters, diffusers' count within 2%.
- diffusers: ``UNet2DModel(sample_size=28, block_out_channels=(32, 64, 64), layers_per_block=1,
  down_block_types=(DownBlock2D, DownBlock2D, AttnDownBlock2D), up_block_types=(AttnUpBlock2D,
  UpBlock2D, UpBlock2D), norm_num_groups=8)`` (``--diffusers 32,64,64``): levels 28, 14, 7 of the
  same widths, attention at 7x7, 1 112 801 parameters. It runs in its default (contiguous) memory
  format, or channels-last with ``--diffusers-channels-last``.

Speed: the networks take turns running blocks of ``--block`` steps (which goes first turns
round too), and the ratio of a dgm network's steps per second to diffusers' is taken per round;
the median over the rounds is printed, so a change of machine load between rounds hardly moves
it. FLOPs per step are counted by ``torch.utils.flop_counter.FlopCounterMode`` over one forward
and backward pass (convolutions, matmuls, attention; not the elementwise ops nor Adam). The
matmul peak is the FLOP/s of 5 back-to-back ``torch.mm`` of 2048x2048 float32 matrices with the
same thread count, measured before every round. Two fractions of it are printed: "% of peak",
the median over rounds of FLOPs/step x steps/s of the round / that round's peak (a busy machine
slows both alike), and "% of best", FLOPs/step x overall steps/s / the best peak of the run (a
lower bound when other jobs share the machine).

Measured on the 2-core Xeon (AVX-512, KVM) this project runs on, torch 2.13.0, diffusers 0.42.1,
an otherwise idle machine (its matmul throughput still varies by 20% over the day, which moves
steps/s but hardly the ratios)::

    .venv/bin/python benchmarks/unet_speed.py
    == batch 64 of 1x28x28, 60 steps each in blocks of 5, 1 torch thread(s), classes 0; matmul peak 119 GFLOP/s (median over blocks, best 124)
    network              parameters GFLOP/step  steps/s % of peak % of best  steps/s ratio to diffusers: median (quartiles)
    dgm 32,64,64            688,705      38.63     1.71       57%       53%  2.25 (2.19-2.35)
    dgm 32,64,96          1,132,193      47.69     1.43       62%       55%  1.92 (1.86-2.03)
    diffusers 32,64,64    1,112,801      72.47     0.75       47%       44%

    .venv/bin/python benchmarks/unet_speed.py --threads 2
    == batch 64 of 1x28x28, 60 steps each in blocks of 5, 2 torch thread(s), classes 0; matmul peak 241 GFLOP/s (median over blocks, best 253)
    network              parameters GFLOP/step  steps/s % of peak % of best  steps/s ratio to diffusers: median (quartiles)
    dgm 32,64,64            688,705      38.63     3.27       54%       50%  2.40 (2.23-2.49)
    dgm 32,64,96          1,132,193      47.69     2.86       57%       54%  2.07 (2.02-2.13)
    diffusers 32,64,64    1,112,801      72.47     1.37       42%       39%

With ``--classes 10`` (30 steps) the ratio was 2.13, with ``--diffusers-channels-last`` 2.28: neither
changes the picture. dgm needs 47% fewer FLOPs per step than diffusers at the same widths (no
second up-path ResBlock per level, no attention outside the middle, skips added, not
concatenated) and runs them faster. When other jobs load the machine, "% of best" falls (to
44-52% for dgm, 40% for diffusers in such runs) while the per-round fractions and ratios hold.

torch.compile (``--compile``, dgm's networks only): 164 s to compile forward and backward (warm-up
of 2 steps, busy machine), then 1.60 steps/s against eager's 1.9 in the same conditions (ratio to
diffusers 2.11 against 2.3-2.4), so dgm does not use it.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from dgm.nn.unet import unet_for

warnings.filterwarnings("ignore")  # diffusers' and requests' import-time notices
try:
    from diffusers import UNet2DModel
except ImportError as error:  # pragma: no cover - the benchmark's only extra requirement
    raise SystemExit(
        "this benchmark needs diffusers (never a dependency of dgm): .venv/bin/pip install --no-deps "
        "diffusers huggingface_hub requests httpx2 httpcore2 h11 truststore urllib3 certifi"
        f" ({error})"
    ) from error

SHAPE, STEPS_T = (1, 28, 28), 1000
Batch = tuple[Tensor, Tensor, Tensor | None, Tensor]  # x, t, cond, target


def dgm_unet(classes: int, widths: tuple[int, ...]) -> tuple[nn.Module, Callable]:
    """dgm's UNet with ``widths`` channels at its levels (``unet_for``'s default: 32, 64, 64)."""
    channels = widths[0]
    if any(w % channels for w in widths):
        raise SystemExit(f"--dgm {widths}: every width must be a multiple of the first")
    net = unet_for(SHAPE, num_classes=classes, channels=channels, mults=tuple(w // channels for w in widths))
    return net, net


def diffusers_unet(classes: int, channels: tuple[int, ...], channels_last: bool) -> tuple[nn.Module, Callable]:
    """UNet2DModel with one ResNet per level and side, attention at the lowest level only."""
    levels = len(channels)
    net = UNet2DModel(
        sample_size=SHAPE[1], in_channels=SHAPE[0], out_channels=SHAPE[0], block_out_channels=channels,
        layers_per_block=1, norm_num_groups=8, num_class_embeds=classes or None,
        down_block_types=("DownBlock2D",) * (levels - 1) + ("AttnDownBlock2D",),
        up_block_types=("AttnUpBlock2D",) + ("UpBlock2D",) * (levels - 1),
    )  # fmt: skip
    if channels_last:
        net = net.to(memory_format=torch.channels_last)

    def forward(x: Tensor, t: Tensor, cond: Tensor | None) -> Tensor:
        return net(x, t, class_labels=cond).sample

    return net, forward


def trainer(net: nn.Module, forward: Callable) -> Callable[[Batch], None]:
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step(batch: Batch) -> None:
        x, t, cond, target = batch
        loss = F.mse_loss(forward(x, t, cond), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def flops_per_step(forward: Callable, batch: Batch) -> int:
    """FLOPs of one forward and backward pass, as FlopCounterMode counts them."""
    x, t, cond, target = batch
    with FlopCounterMode(display=False) as counter:
        F.mse_loss(forward(x, t, cond), target).backward()
    return counter.get_total_flops()


class MatmulPeak:
    """The machine's float32 matmul throughput: FLOP/s of back-to-back ``torch.mm`` of two n x n
    matrices, timed over ``repeats`` products at once (about half a second for n = 2048), like
    the training blocks, so that a busy machine slows both alike."""

    def __init__(self, n: int = 2048, repeats: int = 5):
        self.a, self.b, self.out, self.repeats = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n), repeats
        torch.mm(self.a, self.b, out=self.out)

    def __call__(self) -> float:
        start = time.perf_counter()
        for _ in range(self.repeats):
            torch.mm(self.a, self.b, out=self.out)
        return self.repeats * 2 * self.a.shape[0] ** 3 / (time.perf_counter() - start)


def batches(n: int, size: int, classes: int, generator: torch.Generator) -> list[Batch]:
    out = []
    for _ in range(n):
        x = torch.randn(size, *SHAPE, generator=generator)
        t = torch.randint(0, STEPS_T, (size,), generator=generator).float()
        cond = torch.randint(0, classes, (size,), generator=generator) if classes else None
        out.append((x, t, cond, torch.randn(size, *SHAPE, generator=generator)))
    return out


def run_block(step: Callable[[Batch], None], block: list[Batch]) -> float:
    """Seconds taken by ``step`` over the batches of ``block``."""
    start = time.perf_counter()
    for batch in block:
        step(batch)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="timed training steps of each network")
    parser.add_argument("--block", type=int, default=5, help="steps per timed block of each network")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--classes", type=int, default=0, help="class labels (0: unconditional)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: a fair ratio on a shared machine)")
    parser.add_argument(
        "--dgm", nargs="+", default=["32,64,64", "32,64,96"], help="dgm UNets to time, by their level widths"
    )
    parser.add_argument("--diffusers", default="32,64,64", help="UNet2DModel's block_out_channels")
    parser.add_argument("--diffusers-channels-last", action="store_true", help="run diffusers channels-last")
    parser.add_argument("--compile", action="store_true", help="torch.compile dgm's network (slow; see docstring)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(args.seed)

    torch.manual_seed(args.seed)
    nets = {f"dgm {w}": dgm_unet(args.classes, widths(w)) for w in args.dgm}
    name = f"diffusers {args.diffusers}"
    nets[name] = diffusers_unet(args.classes, widths(args.diffusers), args.diffusers_channels_last)
    warm = batches(2, args.batch, args.classes, generator)
    steps, flops, params = {}, {}, {}
    for name, (net, forward) in nets.items():
        params[name] = sum(p.numel() for p in net.parameters())
        flops[name] = flops_per_step(forward, warm[0])
        if name.startswith("dgm") and args.compile:
            forward = torch.compile(forward)
        steps[name] = trainer(net, forward)
        start = time.perf_counter()
        for batch in warm:  # warm-up (and compilation)
            steps[name](batch)
        print(f"{name}: warm-up of {len(warm)} steps took {time.perf_counter() - start:.1f} s", flush=True)

    seconds = {name: [] for name in nets}
    matmul_peak, peaks, done = MatmulPeak(), [], 0
    while done < args.steps:
        block = batches(min(args.block, args.steps - done), args.batch, args.classes, generator)
        peaks.append(matmul_peak())
        turn = (done // args.block) % len(nets)  # who goes first turns round, so none always follows another
        order = list(nets)[turn:] + list(nets)[:turn]
        for name in order:
            seconds[name].append(run_block(steps[name], block))
        done += len(block)
    sizes = [min(args.block, args.steps - i) for i in range(0, args.steps, args.block)]
    report(args, params, flops, seconds, peaks, sizes)


def widths(text: str) -> tuple[int, ...]:
    return tuple(int(w) for w in text.split(","))


def report(args, params, flops, seconds, peaks, sizes) -> None:
    """Print the table: per network its parameters, FLOPs/step, steps/s, fraction of the matmul
    peak and, for dgm's, the median ratio of its steps/s to diffusers' over the blocks."""
    print(
        f"== batch {args.batch} of {'x'.join(map(str, SHAPE))}, {args.steps} steps each in blocks of {args.block}, "
        f"{args.threads} torch thread(s), classes {args.classes}; matmul peak {statistics.median(peaks) / 1e9:.0f} "
        f"GFLOP/s (median over blocks, best {max(peaks) / 1e9:.0f})"
    )
    header = f"{'network':<20} {'parameters':>10} {'GFLOP/step':>10} {'steps/s':>8} {'% of peak':>9} {'% of best':>9}"
    print(header + "  steps/s ratio to diffusers: median (quartiles)")
    reference = seconds[f"diffusers {args.diffusers}"]
    for name in seconds:
        rates = [n / s for n, s in zip(sizes, seconds[name], strict=True)]
        fractions = [flops[name] * r / p for r, p in zip(rates, peaks, strict=True)]
        overall = sum(sizes) / sum(seconds[name])
        line = (
            f"{name:<20} {params[name]:>10,} {flops[name] / 1e9:>10.2f} {overall:>8.2f} "
            f"{100 * statistics.median(fractions):>8.0f}% {100 * flops[name] * overall / max(peaks):>8.0f}%"
        )
        if name.startswith("dgm"):
            ratios = [d / o for o, d in zip(seconds[name], reference, strict=True)]
            q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
            line += f"  {statistics.median(ratios):.2f} ({q[0]:.2f}-{q[2]:.2f})"
        print(line)


if __name__ == "__main__":
    main()
