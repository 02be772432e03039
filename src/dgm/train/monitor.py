"""Diagnostics while training (``TrainConfig.monitor_every``, ``dgm train --monitor-every N``).

Every N training batches, :class:`TrainingMonitor` draws a fixed set of samples from the model
(the same seed every time, so two checks differ only by the weights), logs ``monitor/*`` values
beside the losses in ``RUN/logs`` and writes a warning line when the samples look collapsed:

- toy 2-D Gaussian mixtures (``toy2d:gmm8``, ``toy2d:grid25``): 2000 points, mapped to raw units;
  ``monitor/modes_covered`` and ``monitor/hq_fraction`` from
  :func:`dgm.eval.toy2d.mode_coverage` (VEEGAN's measure). :func:`coverage_warning` warns when
  fewer modes are covered than the best check so far of the run (mode collapse);
- digit images (1x8x8 or 1x28x28, where a shipped digit classifier applies, as for the
  ``classes`` metric of ``dgm eval``): 500 images; ``monitor/class_share/0`` .. ``/9``, the
  fraction of samples the classifier puts in each digit class, and ``monitor/class_share/largest``.
  :func:`class_collapse_warning` warns when one class takes more than half of the samples
  (:func:`class_limit`);
- any other data has nothing to monitor: :func:`check_monitor` refuses ``--monitor-every`` there.

A warning is written when the samples fall into collapse, not again at every check that stays
there: again only if they fall further (fewer modes) or another class takes over. Warnings go
to the ``log`` of :func:`dgm.train.fit` (standard error) and into metrics.json as
``monitor_warnings`` (their number, and the lines); the best coverage so far and the warnings
are part of the checkpoint, so a resumed run compares with the best of every session.

Samples come from the live (trained) weights in eval mode, from their own
``torch.Generator``; the global random state is saved and restored around them, so
monitoring changes nothing in the training run.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence

import lightning as L
import torch
from torch import Tensor

from dgm.data.targets import GaussianMixture
from dgm.errors import ConfigError
from dgm.eval.features import DIGIT_SPACES, class_histogram, feature_space
from dgm.eval.toy2d import ModeCoverage, mode_coverage
from dgm.models.base import GenerativeModel
from dgm.sampling import draw_samples, sample_labels

SAMPLES = {"modes": 2000, "classes": 500}  # samples drawn at each check, by kind of monitor
# The monitor's samples use seed + SEED_OFFSET: neither samples.png's (seed) nor the fresh target
# draws of the toy metrics (seed + 10 000).
SEED_OFFSET = 20_000
MAX_RECORDED = 100  # warning lines kept in the checkpoint and metrics.json (all are counted)
FAR = 1e9  # where non-finite 2-D samples are put: no mode's high-quality sample


def monitor_kind(dataset) -> str | None:
    """What the monitor measures on ``dataset``: "modes" (toy 2-D Gaussian mixtures), "classes"
    (digit images, 1x8x8 or 1x28x28) or None (nothing)."""
    info = dataset.raw_info
    if isinstance(dataset.target, GaussianMixture) and tuple(info.shape) == (2,):
        return "modes"
    if info.is_image and tuple(info.shape) in DIGIT_SPACES:
        return "classes"
    return None


def check_monitor(every: int | None, dataset) -> None:
    """A ConfigError when monitoring every ``every`` batches is asked on data it cannot monitor."""
    if every is None or monitor_kind(dataset) is not None:
        return
    raise ConfigError(
        f"--monitor-every: nothing to monitor on {dataset.spec}; the training monitor measures mode coverage on "
        "toy2d:gmm8 and toy2d:grid25 and the predicted-class histogram of digit images (digits, mnist5k, "
        "1x8x8 or 1x28x28); leave out --monitor-every (train.monitor_every)"
    )


def coverage_warning(
    batch: int, covered: int, modes: int, best: int, best_batch: int, previous: int | None = None
) -> str | None:
    """The mode-collapse warning of a check at ``batch`` that found ``covered`` of ``modes``
    modes, when the best check so far (at ``best_batch``) found ``best``; None when nothing is
    wrong. A drop warns when it loses at least :func:`mode_tolerance` modes (one of gmm8's 8,
    three of grid25's 25: a run still finding its modes gains and loses one or two from check to
    check). ``previous`` is the coverage of the previous check: when it was already below the
    best, only a further drop warns, so a lasting collapse gives one line, not one per check."""
    if covered > best - mode_tolerance(modes):
        return None
    if previous is not None and previous < best and covered >= previous:
        return None
    return f"batch {batch}: mode collapse? {covered} of {modes} modes covered, {best} at batch {best_batch}"


def mode_tolerance(modes: int) -> int:
    """Modes a check may lose against the best before it is called a collapse: a tenth of them,
    at least one: ``max(1, ceil(modes / 10))``."""
    return max(1, math.ceil(modes / 10))


def class_limit(kept: int) -> float:
    """The share of samples one class may take before it is called a collapse: one half, or 1.5
    times a class's share of balanced samples when fewer than 3 classes are kept (with two
    classes one half is only their balance): ``max(1/2, 1.5 / kept)``."""
    return max(0.5, 1.5 / kept)


def dominant_class(counts: Sequence[int], classes: Sequence[int] | None = None) -> int | None:
    """The class taking more than :func:`class_limit` of the samples, from ``counts`` of
    samples per predicted class, or None; ``classes`` are the classes the model was trained on
    (all by default)."""
    total = sum(counts)
    if total == 0:
        return None
    top = max(range(len(counts)), key=lambda c: counts[c])
    kept = len(classes) if classes is not None else len(counts)
    return top if counts[top] / total > class_limit(kept) else None


def class_collapse_warning(
    counts: Sequence[int], batch: int, classes: Sequence[int] | None = None, previous: int | None = None
) -> str | None:
    """The class-collapse warning of a check at ``batch`` whose samples the digit classifier put
    ``counts[c]`` times in class c, when one class takes more than :func:`class_limit` of them;
    None otherwise, and None when ``previous`` (the dominant class of the previous check) is
    that same class, so a lasting collapse gives one line."""
    top = dominant_class(counts, classes)
    if top is None or top == previous:
        return None
    total = sum(counts)
    share = counts[top] / total
    return (
        f"batch {batch}: class collapse? {counts[top]} of {total} samples are classified as digit {top} ({share:.0%})"
    )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class TrainingMonitor(L.Callback):
    """Every ``every`` training batches, sample ``module.model``, log ``monitor/*`` values and warn
    of collapse (see the module docstring). ``seed`` is the run's; ``log`` receives the warning
    lines (default: standard error).

    Place it before the periodic checkpoint, so a checkpoint written at a check holds it.

    >>> monitor = TrainingMonitor(load_dataset("toy2d:grid25"), every=250)
    >>> L.Trainer(callbacks=[monitor], ...).fit(GenerativeTask(model, config), loader)
    >>> monitor.warnings   # ["batch 1500: mode collapse? 14 of 25 modes covered, 23 at batch 750"]
    """

    def __init__(self, dataset, every: int, seed: int = 0, log: Callable[[str], None] | None = None):
        if not (isinstance(every, int) and not isinstance(every, bool) and every >= 1):
            raise ConfigError(f"monitor_every must be a positive integer, got {every!r} (--monitor-every)")
        check_monitor(every, dataset)
        self.dataset, self.every, self.seed = dataset, every, seed + SEED_OFFSET
        self.kind = monitor_kind(dataset)
        self.n = SAMPLES[self.kind]
        self.say = log or _say  # not self.log: Lightning sets that to the module's log() in every callback
        # what the checkpoint keeps
        self.best, self.best_batch = -1, -1  # the most modes covered so far, and when
        self.previous: int | None = None  # modes covered, or the dominant class, at the last check
        self.count = 0
        self.warnings: list[str] = []

    # ----- measuring ----------------------------------------------------------------------
    def draw(self, model: GenerativeModel) -> Tensor:
        """The monitor's samples of ``model`` in display units (raw 2-D points, images in [0,
        1]), drawn in eval mode from the monitor's own generator, the global random state left
        as it was."""
        device = model.device
        forked = [] if device.type == "cpu" else [device]
        with torch.random.fork_rng(devices=forked, device_type=device.type if forked else "cuda"):
            cond = sample_labels(model, self.n, self.dataset.classes)
            x = draw_samples(model, self.n, seed=self.seed, cond=cond, batch_size=500)
        return self.dataset.to_display(x)

    def measure(self, model: GenerativeModel) -> tuple[dict[str, float], ModeCoverage | list[int] | None]:
        """The ``monitor/*`` values of ``model``'s samples now, and what they come from: the
        :class:`ModeCoverage` of 2-D points, or the number of images per predicted class (None
        when no image is finite; non-finite points count as far from every mode)."""
        x = self.draw(model)
        if self.kind == "modes":
            target = self.dataset.target
            finite = torch.isfinite(x).all(dim=1, keepdim=True)
            cov = mode_coverage(torch.where(finite, x, FAR), target.modes, target.std)
            return {"monitor/modes_covered": float(cov.covered), "monitor/hq_fraction": cov.hq_fraction}, cov
        finite = torch.isfinite(x.flatten(1)).all(dim=1)
        if not bool(finite.any()):
            return {}, None
        shares = class_histogram(feature_space(self.dataset.raw_info).probs(x[finite]))
        values = {f"monitor/class_share/{c}": share for c, share in enumerate(shares)}
        counts = [round(share * int(finite.sum())) for share in shares]
        return {**values, "monitor/class_share/largest": max(shares)}, counts

    def observe(self, batch: int, found: ModeCoverage | list[int] | None) -> str | None:
        """Take what the check at ``batch`` found (see :meth:`measure`) into the monitor's state;
        the warning it calls for, or None."""
        if isinstance(found, ModeCoverage):
            warning = coverage_warning(batch, found.covered, found.modes, self.best, self.best_batch, self.previous)
            if found.covered > self.best:
                self.best, self.best_batch = found.covered, batch
            self.previous = found.covered
        elif found is None:
            warning, self.previous = f"batch {batch}: every sample of the monitor is NaN or infinite", None
        else:
            warning = class_collapse_warning(found, batch, self.dataset.classes, self.previous)
            self.previous = dominant_class(found, self.dataset.classes)
        if warning is not None:
            self.count += 1
            self.warnings = [*self.warnings, warning][-MAX_RECORDED:]
        return warning

    def record(self) -> dict:
        """The metrics.json entry ``monitor_warnings``: the number of warnings and the last lines."""
        what = "modes covered by" if self.kind == "modes" else "predicted-class histogram of"
        last = f"; the last: {self.warnings[-1]}" if self.warnings else ""
        return {
            "value": self.count,
            "unit": "warnings",
            "what": f"collapse warnings of the training monitor ({what} {self.n} samples every {self.every} "
            f"batches){last}",
            "warnings": list(self.warnings),
        }

    # ----- Lightning hooks ----------------------------------------------------------------
    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx) -> None:
        # Training batches over the whole run, this one included. Not Lightning's
        # _batches_that_stepped, which its logged steps follow: that one jumps by one when a run is
        # resumed from the checkpoint written at the end of training.
        done = trainer.fit_loop.epoch_loop.batch_progress.total.processed
        if done % self.every or not trainer.is_global_zero:
            return
        values, found = self.measure(module.model)
        for logger in trainer.loggers:
            logger.log_metrics(values, step=done - 1)  # the step Lightning gives this batch's values
        warning = self.observe(done, found)
        if warning is not None:
            self.say(f"warning: {warning}")

    def state_dict(self) -> dict:
        return {
            "best": self.best,
            "best_batch": self.best_batch,
            "previous": self.previous,
            "count": self.count,
            "warnings": list(self.warnings),
        }

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_batch = int(state["best"]), int(state["best_batch"])
        self.previous = None if state["previous"] is None else int(state["previous"])
        self.count, self.warnings = int(state["count"]), list(state["warnings"])
