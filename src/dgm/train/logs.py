"""Per-step logs that a resumed run appends to: ``logs/csv/metrics.csv`` and TensorBoard.

Lightning's CSVLogger deletes an existing ``metrics.csv`` when it starts, and rewrites it in
place when a new column appears; here the file is only ever appended to, and a new column
rewrites it atomically (write, then rename) with the union of the columns, so no earlier row
is lost, whatever session wrote it and wherever it was killed.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from lightning.fabric.loggers.csv_logs import _ExperimentWriter
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.logger import rank_zero_experiment

from dgm.io import atomic_write
from dgm.runs import LOGS


class AppendingWriter(_ExperimentWriter):
    """Lightning's CSV experiment writer, keeping the rows already in the file."""

    def __init__(self, log_dir: str):
        self.metrics: list[dict[str, float]] = []
        self.log_dir = log_dir
        self.metrics_file_path = os.path.join(log_dir, self.NAME_METRICS_FILE)
        os.makedirs(log_dir, exist_ok=True)
        self.metrics_keys = self._header()

    def _header(self) -> list[str]:
        """The columns of the existing file ([] if none). A last line cut short by a kill is
        removed, so that appended rows start on a line of their own."""
        if not os.path.isfile(self.metrics_file_path):
            return []
        with open(self.metrics_file_path, "rb+") as f:
            text = f.read()
            if text and not text.endswith(b"\n"):
                f.truncate(text.rfind(b"\n") + 1)
        with open(self.metrics_file_path, newline="") as f:
            return next(csv.reader(f), [])

    def log_hparams(self, params) -> None:  # the run's config.json holds them
        pass

    def save(self) -> None:
        if not self.metrics:
            return
        keys = sorted(set(self.metrics_keys).union(*self.metrics))
        if keys != self.metrics_keys and os.path.isfile(self.metrics_file_path):
            self._rewrite(keys)
        exists = os.path.isfile(self.metrics_file_path)
        self.metrics_keys = keys
        with open(self.metrics_file_path, "a" if exists else "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            if not exists:
                writer.writeheader()
            writer.writerows(self.metrics)
        self.metrics = []

    def _rewrite(self, keys: list[str]) -> None:
        with open(self.metrics_file_path, newline="") as f:
            rows = list(csv.DictReader(f))

        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=keys)
                writer.writeheader()
                writer.writerows(rows)

        atomic_write(self.metrics_file_path, write)


class AppendingCSVLogger(CSVLogger):
    """``CSVLogger`` writing to ``RUN/logs/csv/metrics.csv`` through :class:`AppendingWriter`."""

    def __init__(self, run_dir: Path):
        super().__init__(str(run_dir), name=LOGS, version="csv")

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingWriter:
        if self._experiment is None:
            self._experiment = AppendingWriter(self.log_dir)
        return self._experiment


def make_loggers(run_dir: Path) -> list:
    """The CSV logger, and TensorBoard's when it is installed (it appends by itself)."""
    loggers = [AppendingCSVLogger(run_dir)]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(run_dir), name=LOGS, version="tensorboard"))
    except ImportError:
        pass
    return loggers
