"""The training curves of a run, ``RUN/training.png``, from its per-step log ``RUN/logs/csv/metrics.csv``.

One panel per kind of logged value (:func:`training_panels`), left out when nothing of its kind
was logged:

- the losses: ``train/loss``, or ``train/<part>/loss`` for each part of a model trained in parts
  (a GAN's discriminator and generator), and ``val/loss``;
- the other training terms, one panel per part (a GAN discriminator's ``d_real`` and ``d_fake``);
- gradient norms (``train/grad_norm``, ``train/<part>/grad_norm``), on a log scale;
- steps skipped for non-finite gradients (``train/skipped_steps``);
- the training monitor's values (``monitor/*``, :mod:`dgm.train.monitor`), one panel per name,
  ``monitor/class_share/*`` together.

Values logged at every few batches are drawn faint, with a smoothed line over them
(:func:`smooth`); validation and monitor values, logged now and then, as points joined by lines.
The x axis counts training batches (the log's step + 1). Rows a resumed session logged again
replace those of the killed one.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.ticker import LogFormatter, MaxNLocator

from dgm.errors import DgmError, RunError
from dgm.runs import LOGS, TRAINING, run_path
from dgm.viz.figures import plt, save_figure

IGNORED = ("step", "epoch")
MONITOR_TITLES = {
    "modes_covered": "monitor: modes covered",
    "hq_fraction": "monitor: fraction of high-quality samples",
    "class_share": "monitor: share of samples per predicted digit",
}


def log_path(run_dir) -> Path:
    """The CSV log of a run (written by :mod:`dgm.train.logs`)."""
    return Path(run_dir) / LOGS / "csv" / "metrics.csv"


@dataclass(frozen=True)
class Panel:
    """One panel of training.png: a title, the series it draws (names of :func:`series_names`)
    and whether its y axis is logarithmic."""

    title: str
    series: tuple[str, ...]
    log_scale: bool = False


def read_log(path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every column of a run's CSV log with at least one value: ``{column: (steps, values)}``,
    sorted by step; when a step appears twice (rows a resumed session logged again), the later
    row's value is kept."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"no training log at {path}: nothing to plot (a run writes it once training has begun)")
    found: dict[str, dict[int, float]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                step = int(float(row.get("step") or ""))
            except ValueError:
                continue  # a row without a step (none is written so) cannot be placed
            for column, text in row.items():
                if column in IGNORED or column is None or not text:
                    continue
                try:
                    found.setdefault(column, {})[step] = float(text)
                except ValueError:
                    continue
    series = {}
    for column, values in found.items():
        steps = np.array(sorted(values), dtype=np.int64)
        series[column] = (steps, np.array([values[s] for s in steps], dtype=np.float64))
    return series


def series_names(columns: Iterable[str]) -> dict[str, str]:
    """``{name: column}``: the logged name of each column, preferring the per-step values
    Lightning writes as ``NAME_step`` to the epoch means of ``NAME_epoch`` (drawn only when no
    per-step ones exist); a name logged without a suffix is its own column."""
    rank = {"_step": 0, "": 1, "_epoch": 2}
    best: dict[str, tuple[int, str]] = {}
    for column in columns:
        if column in IGNORED:
            continue
        suffix = next((s for s in ("_step", "_epoch") if column.endswith(s)), "")
        name = column.removesuffix(suffix) if suffix else column
        if name not in best or rank[suffix] < best[name][0]:
            best[name] = (rank[suffix], column)
    return {name: column for name, (_, column) in best.items()}


def training_panels(names: Iterable[str]) -> list[Panel]:
    """The panels of training.png for logged series ``names`` (see the module docstring), in
    the order losses, training terms per part, gradient norms, skipped steps, monitor values;
    a panel exists only when one of its series does. Other names are not drawn."""
    losses, norms, skipped = [], [], []
    terms: dict[str | None, list[str]] = {}
    monitor: dict[str, list[str]] = {}
    for name in sorted(names):
        head, *rest = name.split("/")
        if head == "train" and rest:
            part, term = (None, rest[0]) if len(rest) == 1 else (rest[0], "/".join(rest[1:]))
            if term == "loss":
                losses.append(name)
            elif term == "grad_norm":
                norms.append(name)
            elif term == "skipped_steps":
                skipped.append(name)
            else:
                terms.setdefault(part, []).append(name)
        elif head == "val" and rest and rest[-1] == "loss":
            losses.append(name)
        elif head == "monitor" and rest:
            monitor.setdefault(rest[0], []).append(name)
    panels = []
    if losses:
        panels.append(Panel("loss", tuple(sorted(losses, key=lambda n: n.startswith("val/")))))
    for part, group in sorted(terms.items(), key=lambda item: item[0] or ""):
        panels.append(Panel(f"{part} terms" if part else "training terms", tuple(group)))
    if norms:
        panels.append(Panel("gradient norm (log scale)", tuple(norms), log_scale=True))
    if skipped:
        panels.append(Panel("steps skipped (non-finite gradients), in all", tuple(skipped)))
    for group, members in monitor.items():
        largest = [m for m in members if m.endswith("/largest")]
        title = MONITOR_TITLES.get(group, f"monitor: {group.replace('_', ' ')}")
        panels.append(Panel(title, tuple(largest + [m for m in members if m not in largest])))
    return panels


def smooth(values, span: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing, Adam's bias correction):
    ``m_t = (1 - a) m_{t-1} + a y_t`` from ``m_0 = 0`` with ``a = 1 / span``, returned as
    ``m_t / (1 - (1 - a)^t)``, so a constant series stays constant and ``span = 1`` changes
    nothing."""
    y = np.asarray(values, dtype=np.float64)
    a = 1.0 / max(float(span), 1.0)
    out, m = np.empty_like(y), 0.0
    for t, value in enumerate(y, start=1):
        m = (1 - a) * m + a * value
        out[t - 1] = m / (1 - (1 - a) ** t)
    return out


def same_as_loss(name: str, names: dict[str, str], log: dict) -> bool:
    """True for a training term that repeats its part's loss value for value (a flow's ``nll``):
    a panel of its own would show the loss again."""
    head, _, term = name.rpartition("/")
    loss = names.get(f"{head}/loss")
    if not head.startswith("train") or term in ("loss", "grad_norm", "skipped_steps") or loss is None:
        return False
    (steps, values), (loss_steps, loss_values) = log[names[name]], log[loss]
    return np.array_equal(steps, loss_steps) and np.allclose(values, loss_values, rtol=1e-6, atol=0)


def sparse(name: str) -> bool:
    """Series logged now and then (validation, the monitor): drawn as points, not smoothed."""
    return name.startswith(("val/", "monitor/"))


def plot_training(run_dir, out=None, title: str | None = None) -> Path:
    """Draw the training curves of the run in ``run_dir`` into ``out`` (default
    ``RUN/training.png``); raises :class:`RunError` when the run has no log or nothing in it."""
    run_dir = run_path(run_dir)
    path = log_path(run_dir)
    log = read_log(path)
    names = series_names(log)
    panels = training_panels(name for name in names if not same_as_loss(name, names, log))
    if not panels:
        raise RunError(f"{path} holds no logged losses yet: nothing to plot")
    cols = 1 if len(panels) == 1 else 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 3.0 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        _draw_panel(ax, panel, {name: log[names[name]] for name in panel.series})
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    fig.suptitle(title or _title(run_dir), fontsize=10)
    # fixed margins in inches, not tight_layout: a third of the drawing time, at the end of every run
    height, top, bottom, gap = 3.0 * rows, 0.6, 0.45, 0.75
    axes_height = (height - top - bottom - (rows - 1) * gap) / rows
    fig.subplots_adjust(
        left=0.08, right=0.98, top=1 - top / height, bottom=bottom / height, wspace=0.22, hspace=gap / axes_height
    )
    return save_figure(fig, out if out is not None else run_dir / TRAINING)


class PlainLogFormatter(LogFormatter):
    """Log-axis labels as plain numbers (0.5, 2, 300), not 5e-01 or 5 x 10^-1; which ticks get
    one is LogFormatter's choice (minor ticks too when the axis spans a decade or less)."""

    def _num_to_string(self, x, vmin, vmax):
        return f"{x:.3g}"


def _draw_panel(ax, panel: Panel, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    many = len(data) > 4
    for i, (name, (steps, values)) in enumerate(data.items()):
        x, color = steps + 1, "k" if name.endswith("/largest") else f"C{i % 10}"
        label = name.removeprefix("monitor/")
        if sparse(name):
            bold = not many or name.endswith("/largest")
            ax.plot(x, values, "o-", color=color, ms=3 if bold else 1.5, lw=1.2 if bold else 0.6, label=label)
            continue
        ax.plot(x, values, color=color, alpha=0.25, lw=0.8)
        ax.plot(x, smooth(values, max(1.0, len(values) / 20)), color=color, lw=1.4, label=label)
    if panel.log_scale:
        ax.set_yscale("log", nonpositive="mask")
        ax.yaxis.set_major_formatter(PlainLogFormatter())
        ax.yaxis.set_minor_formatter(PlainLogFormatter(minor_thresholds=(1, 0.4)))
    top = max(float(values.max()) for _, values in data.values())
    if all(name.startswith("monitor/") for name in data) and math.isfinite(top):  # counts and shares: from 0
        ax.set_ylim(0, 1.05 if top <= 1 else top * 1.05)
        ax.yaxis.set_major_locator(MaxNLocator(integer=top > 1))
    ax.set_title(panel.title, fontsize=9)
    ax.set_xlabel("training batch", fontsize=8)
    ax.tick_params(which="both", labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2 if many else 1, loc="best")


def _title(run_dir: Path) -> str:
    from dgm.runs import read_record

    try:
        record = read_record(run_dir)
    except DgmError:
        return f"{run_dir}: training"
    return f"{record.model} on {record.data.get('spec', '?')}: training ({run_dir})"
