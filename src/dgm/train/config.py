"""Training settings, shared by the Python API and the ``dgm train`` options."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from dgm.errors import ConfigError

ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps")
PRECISIONS = ("32-true", "32", "64-true", "64", "16-mixed", "bf16-mixed", "bf16-true", "16-true")
BUDGET_KEYS = ("epochs", "steps", "minutes")
LR_SCHEDULES = ("constant", "cosine")
# The largest seed numpy and Lightning's seed_everything accept.
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class TrainConfig:
    """How to train: budget, optimiser, hardware, checkpoints.

    The budget is whichever of ``epochs``, ``steps`` and ``minutes`` runs out first, each
    counted over the whole run (all sessions of a resumed run together); with none given,
    training runs for 20 epochs. Use ``minutes`` as a safety bound: a budget in steps or
    epochs (with ``patience`` for early stopping) gives the same model on an idle and a busy
    machine. Every value is checked on construction; a bad one raises :class:`ConfigError`
    naming the key and the command-line option.

    ``lr_schedule="cosine"`` anneals the learning rate of every optimizer from ``lr`` to 0 over
    the whole run, ``lr * 0.5 * (1 + cos(pi * t / T))`` at step ``t`` (SGDR without restarts,
    Loshchilov & Hutter 2017; as for neural spline flows, Durkan et al. 2019). ``T`` comes from
    the budget: ``steps``, or ``epochs`` times the batches per epoch, the smaller if both are
    given; a ``minutes`` budget alone has no end to anneal to and is refused.

    ``ema=d`` keeps an exponential moving average of the weights, ``shadow <- d_n shadow +
    (1 - d_n) theta`` after every optimizer step taken, with ``d_n = min(d, (1 + n) / (10 + n))``
    at update ``n`` (see :mod:`dgm.train.ema`); validation, early stopping, ``keep`` and the
    saved weights then use the average, while training goes on from the live weights.

    ``monitor_every=N`` samples the model every N training batches and logs ``monitor/*``
    values, with a warning line when the samples collapse: mode coverage on the toy 2-D
    Gaussian mixtures, the predicted-class histogram of digit images (see
    :mod:`dgm.train.monitor`); :func:`dgm.train.fit` refuses it on other data.
    """

    epochs: int | None = None
    steps: int | None = None
    minutes: float | None = None  # wall-clock bound on the training time of the whole run
    batch_size: int = 128
    lr: float = 1e-3
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: anneal to 0 over the budget
    weight_decay: float = 0.0  # decoupled (AdamW), on weights only: biases are not decayed
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = None  # max gradient norm
    seed: int = 0
    accelerator: str = "auto"  # "cpu", "gpu"/"cuda", "mps" or "auto"
    devices: int = 1  # processes (or GPUs) per node; > 1 trains with DDP
    num_nodes: int = 1
    precision: str = "32-true"
    patience: int | None = None  # stop after this many validations without a lower val/loss
    keep: Literal["best", "last"] = "best"  # weights saved at the end: best validation loss, or last
    ema: float | None = None  # decay of a moving average of the weights, validated and saved instead of them
    monitor_every: int | None = None  # sample every N training batches and warn of collapse (dgm.train.monitor)
    checkpoint_every: int | None = None  # also checkpoint every N steps
    checkpoint_minutes: float = 1.0  # checkpoint at least this often (kill -9 loses at most this much)
    eval_samples: int = 64  # samples drawn for samples.png
    max_parameters: int = 50_000_000  # refuse to build a larger model (see dgm.models.size)

    def __post_init__(self) -> None:
        for key in ("epochs", "steps", "batch_size", "devices", "num_nodes", "patience", "checkpoint_every"):
            _at_least(key, getattr(self, key), 1)
        _at_least("monitor_every", self.monitor_every, 1)
        _at_least("eval_samples", self.eval_samples, 1)
        _at_least("max_parameters", self.max_parameters, 1)
        for key in ("minutes", "lr", "grad_clip", "checkpoint_minutes"):
            _positive(key, getattr(self, key))
        _at_least("weight_decay", self.weight_decay, 0)
        if not (isinstance(self.seed, int) and 0 <= self.seed <= MAX_SEED):
            raise ConfigError(f"seed must be an integer in 0..{MAX_SEED}, got {self.seed!r} ({hint('seed')})")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas!r} (train.betas)")
        if self.accelerator not in ACCELERATORS:
            raise ConfigError(
                f"accelerator must be one of {', '.join(ACCELERATORS)}, got {self.accelerator!r} ({hint('accelerator')})"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r} ({hint('lr_schedule')})"
            )
        if self.lr_schedule == "cosine" and self.default_epochs is None and self.steps is None:
            raise ConfigError(
                "--lr-schedule cosine needs --steps or --epochs to know where the schedule ends "
                "(a --minutes budget alone has no known end)"
            )
        _decay("ema", self.ema)
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")

    @property
    def default_epochs(self) -> int | None:
        """Epoch limit: the given one, or 20 when no budget is given at all."""
        if self.epochs is None and self.steps is None and self.minutes is None:
            return 20
        return self.epochs

    def budget(self) -> str:
        """The budget in words, e.g. "300 epochs or 10 minutes, whichever comes first"."""
        parts = []
        if self.default_epochs is not None:
            parts.append(f"{self.default_epochs} epoch{'s' * (self.default_epochs != 1)}")
        if self.steps is not None:
            parts.append(f"{self.steps} step{'s' * (self.steps != 1)}")
        if self.minutes is not None:
            parts.append(f"{self.minutes:g} minute{'s' * (self.minutes != 1)}")
        return " or ".join(parts) + (", whichever comes first" if len(parts) > 1 else "")


def hint(key: str) -> str:
    """Where ``key`` is set: its command-line option and its config-file name."""
    return f"--{key.replace('_', '-')} or train.{key}"


def _at_least(key: str, value, low: int) -> None:
    if value is None:
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value < low:
        what = "a positive integer" if low == 1 else f"at least {low}"
        raise ConfigError(f"{key} must be {what}, got {value!r} ({hint(key)})")


def _decay(key: str, value) -> None:
    if value is None:
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or not 0 < value < 1:
        raise ConfigError(f"{key} must be a decay between 0 and 1 (exclusive), e.g. 0.999, got {value!r} ({hint(key)})")


def _positive(key: str, value) -> None:
    if value is None:
        return
    number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value <= 0:
        raise ConfigError(f"{key} must be a number greater than 0, got {value!r} ({hint(key)})")
