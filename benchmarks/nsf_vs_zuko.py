"""dgm's neural spline flow against zuko's, side by side: steps per second and KL on toy 2-D data.

zuko is installed for this benchmark only (it is not a dependency of dgm)::

    .venv/bin/pip install --no-deps zuko

    .venv/bin/python benchmarks/nsf_vs_zuko.py                      # both variants, 3000 steps
    .venv/bin/python benchmarks/nsf_vs_zuko.py --variant coupling --steps 500 --data toy2d:gmm8

Both flows are trained in the same process on the same batches (batch 512 drawn from the train
split by one generator), with Adam at lr 1e-3, and with the same structure and parameter count:

- ``coupling``: dgm ``nsf`` with ``kind="coupling"`` against ``zuko.flows.NSF(passes=2)``;
- ``autoregressive``: dgm ``nsf`` with ``kind="autoregressive"`` against zuko's default NSF.

Both have zuko's defaults: 3 transforms, 8 bins, splines on [-5, 5], MLP conditioners of two
hidden layers of 64 without skip connections (dgm's own defaults are not used, so that the
comparison holds whatever they become). The splines on [-5, 5] assume standardised features: both flows get the data
standardised by the train split's mean and standard deviation (a fixed affine map whose
constant log-det is added back, so NLLs are in the data's units), and dgm's input ActNorm is
off (``standardize=False``), so both are exactly the 3 spline layers with the same parameter
count. ``--actnorm`` gives dgm its own input standardisation instead (``standardize=True``:
an ActNorm fitted to the first training batch, then fixed; an extra layer whose cost is
counted). On 2-D data zuko's coupling (``passes=2``) is its autoregressive flow, which
transforms both coordinates in every layer, while a dgm coupling layer transforms one (it
computes only the spline parameters of that one; the weights of the other's are there,
unused, as in zuko's MADE they are masked), so the coupling KLs compare different models.

Speed: training alternates blocks of ``--block`` steps of each library (one torch thread), and
the ratio dgm / zuko of steps per second is taken per pair of blocks; the median over all the
pairs is printed, so a change of machine load between blocks hardly moves it. Quality: after
training, the exact test NLL in nats and KL(p || q) = NLL - H(p) against the analytic target.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn

import dgm

try:
    import zuko
except ImportError as error:  # pragma: no cover - the benchmark's only extra requirement
    raise SystemExit("this benchmark needs zuko: .venv/bin/pip install --no-deps zuko") from error

TRANSFORMS, BINS, BOUND, HIDDEN = 3, 8, 5.0, (64, 64)  # zuko.flows.NSF's defaults
VARIANTS = ("coupling", "autoregressive")


def dgm_flow(data: dgm.Dataset, kind: str, actnorm: bool = False) -> nn.Module:
    """dgm's NSF with zuko's architecture (explicit values, not dgm's defaults)."""
    return dgm.build(
        "nsf", data=data, kind=kind, layers=TRANSFORMS, bins=BINS, bound=BOUND, hidden=HIDDEN, lu=False,
        residual=False, standardize=actnorm,
    )  # fmt: skip


def zuko_flow(kind: str) -> nn.Module:
    """zuko's NSF on 2 features: coupling is ``passes=2``, autoregressive the default."""
    passes = 2 if kind == "coupling" else None
    return zuko.flows.NSF(2, bins=BINS, transforms=TRANSFORMS, hidden_features=HIDDEN, passes=passes)


class Standardized:
    """A flow on data standardised by fixed train-split moments: log p(x) = log q(u) - Σ log σ.

    ``log_prob`` is the flow's log-density of standardised points (zuko's ``flow().log_prob``
    or dgm's ``model.log_prob``); ``loss`` the negative mean log-likelihood of a batch.
    """

    def __init__(self, log_prob: Callable[[Tensor], Tensor], train: Tensor, standardize: bool = True):
        self.flow_log_prob, self.mean, self.std = log_prob, train.mean(0), train.std(0)
        if not standardize:
            self.mean, self.std = torch.zeros_like(self.mean), torch.ones_like(self.std)
        self.log_det = -self.std.log().sum()

    def log_prob(self, x: Tensor) -> Tensor:
        return self.flow_log_prob((x - self.mean) / self.std) + self.log_det

    def loss(self, x: Tensor) -> Tensor:
        return -self.log_prob(x).mean()


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def run_block(step: Callable[[Tensor], None], batches: list[Tensor]) -> float:
    """Seconds taken by ``step`` over ``batches``."""
    start = time.perf_counter()
    for x in batches:
        step(x)
    return time.perf_counter() - start


def trainer(module: nn.Module, nll: Callable[[Tensor], Tensor], lr: float) -> Callable[[Tensor], None]:
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)

    def step(x: Tensor) -> None:
        loss = nll(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


@torch.no_grad()
def test_nll(log_prob: Callable[[Tensor], Tensor], x: Tensor, chunk: int = 5000) -> tuple[float, float]:
    """Mean test NLL (nats) and its standard error."""
    lp = torch.cat([log_prob(part).double() for part in x.split(chunk)])
    return float(-lp.mean()), float(lp.std() / math.sqrt(lp.numel()))


def compare(kind: str, data: dgm.Dataset, args: argparse.Namespace) -> None:
    train, test = data.transformed("train")[0], data.transformed("test")[0]
    torch.manual_seed(args.seed)
    ours_flow = dgm_flow(data, kind, args.actnorm).train()
    ours = Standardized(ours_flow.log_prob, train, standardize=not args.actnorm)
    torch.manual_seed(args.seed)
    theirs_flow = zuko_flow(kind).train()
    theirs = Standardized(lambda u: theirs_flow().log_prob(u), train)
    step_ours = trainer(ours_flow, ours.loss, args.lr)
    step_theirs = trainer(theirs_flow, theirs.loss, args.lr)

    generator = torch.Generator().manual_seed(args.seed)
    ratios, time_ours, time_theirs, done = [], 0.0, 0.0, 0
    while done < args.steps:
        n = min(args.block, args.steps - done)
        batches = [train[torch.randint(len(train), (args.batch,), generator=generator)] for _ in range(n)]
        # alternate which library goes first, so neither always follows the other's allocations
        if (done // args.block) % 2 == 0:
            t_ours, t_theirs = run_block(step_ours, batches), run_block(step_theirs, batches)
        else:
            t_theirs, t_ours = run_block(step_theirs, batches), run_block(step_ours, batches)
        ratios.append(t_theirs / t_ours)  # (steps/s of dgm) / (steps/s of zuko)
        time_ours, time_theirs, done = time_ours + t_ours, time_theirs + t_theirs, done + n

    ours_flow.eval()
    theirs_flow.eval()
    nll_ours, se_ours = test_nll(ours.log_prob, test)
    nll_theirs, se_theirs = test_nll(theirs.log_prob, test)
    entropy = float(data.target.entropy())
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    norm = "dgm: its ActNorm, zuko: fixed standardisation" if args.actnorm else "both: fixed standardisation"
    print(
        f"== {kind}: {args.data}, {args.steps} steps, batch {args.batch}, Adam lr {args.lr}, seed {args.seed}; {norm}"
    )
    print(f"  parameters        dgm {n_params(ours_flow):>7}   zuko {n_params(theirs_flow):>7}")
    print(f"  steps/s (overall) dgm {done / time_ours:7.1f}   zuko {done / time_theirs:7.1f}")
    print(
        f"  steps/s ratio dgm/zuko: median {statistics.median(ratios):.2f} over {len(ratios)} interleaved "
        f"blocks (quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f})"
    )
    print(f"  test NLL (nats)   dgm {nll_ours:.4f} ± {se_ours:.4f}   zuko {nll_theirs:.4f} ± {se_theirs:.4f}")
    print(f"  KL (nats)         dgm {nll_ours - entropy:.4f}            zuko {nll_theirs - entropy:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=(*VARIANTS, "both"), default="both")
    parser.add_argument("--data", default="toy2d:checkerboard", help="a toy2d dataset (its target gives the KL)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--block", type=int, default=50, help="steps per timed block of each library")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: a fair ratio on a shared machine)")
    parser.add_argument("--actnorm", action="store_true", help="dgm standardises with its own input ActNorm")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = dgm.load_dataset(args.data)
    for kind in VARIANTS if args.variant == "both" else (args.variant,):
        compare(kind, data, args)


if __name__ == "__main__":
    main()
