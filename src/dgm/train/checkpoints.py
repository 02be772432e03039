"""Checkpoints of a run: written atomically and often, found and checked before a resume.

A run keeps one Lightning checkpoint, ``checkpoints/last.ckpt``, rewritten (write, then
rename) at the end of the first epoch, then whenever ``checkpoint_minutes`` have passed (at a
step or epoch end), every ``checkpoint_every`` steps if asked, at the end of training and when
training is interrupted (Ctrl-C, SIGTERM, an error). So ``kill -9`` at any moment loses at
most a few minutes, and leaves no half-written file.

Before a resume, :func:`read_checkpoint` loads the newest checkpoint with
``weights_only=True`` (never executing code) and checks that it is a checkpoint of this
model; what it found (steps, epochs, training time, early-stopping state) tells whether the
run has budget left.
"""

from __future__ import annotations

import pickle
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from dgm.errors import RunError
from dgm.io import atomic_write
from dgm.runs import CHECKPOINTS, CONFIG

LAST = "last.ckpt"


def checkpoint_dir(run_dir) -> Path:
    return Path(run_dir) / CHECKPOINTS


def newest_checkpoint(run_dir) -> Path | None:
    """The most recently written ``*.ckpt`` of the run (``last.ckpt``, or ``last-v1.ckpt`` left by
    older dgm versions), or None. Temporary files of an interrupted write are ignored."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return None
    found = [p for p in folder.glob("*.ckpt") if p.is_file() and not p.name.startswith(".")]
    return max(found, key=lambda p: p.stat().st_mtime_ns, default=None)


class PeriodicCheckpoint(L.Callback):
    """Write ``last.ckpt`` atomically: after the first epoch, every ``minutes``, every
    ``every_steps`` steps, at the end of training and on an interruption.

    In a multi-process run every process calls ``trainer.save_checkpoint`` (it synchronises);
    the decision to save is taken by process 0 and broadcast, and only it writes the file.
    """

    def __init__(self, run_dir: Path, minutes: float, every_steps: int | None = None):
        self.path = checkpoint_dir(run_dir) / LAST
        self.interval = 60.0 * minutes
        self.every_steps = every_steps
        self.last_save = time.monotonic()
        self.saved_step = -1

    def save(self, trainer: L.Trainer) -> None:
        if trainer.global_step == self.saved_step and self.path.is_file():
            return
        if trainer.is_global_zero:
            atomic_write(self.path, lambda tmp: trainer.save_checkpoint(tmp, weights_only=False))
        else:
            trainer.save_checkpoint(self.path, weights_only=False)  # writes nothing here; joins the barrier
        self.last_save = time.monotonic()
        self.saved_step = trainer.global_step

    def _due(self, trainer: L.Trainer, epoch_end: bool) -> bool:
        due = time.monotonic() - self.last_save >= self.interval
        due = due or (epoch_end and self.saved_step < 0)
        due = due or bool(self.every_steps and trainer.global_step % self.every_steps == 0)
        if trainer.world_size > 1:
            due = bool(trainer.strategy.broadcast(due, src=0))
        return due

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self._due(trainer, epoch_end=False):
            self.save(trainer)

    def on_train_epoch_end(self, trainer, module) -> None:
        if self._due(trainer, epoch_end=True):
            self.save(trainer)

    def on_train_end(self, trainer, module) -> None:
        self.save(trainer)

    def on_exception(self, trainer, module, exception: BaseException) -> None:
        if trainer.global_step > 0:
            self.save(trainer)


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about the run's progress."""

    path: Path
    steps: int
    epochs: int  # completed epochs
    train_seconds: float  # training time over every session so far
    early_stopping: dict | None  # Lightning's EarlyStopping state, when the run used it


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def read_checkpoint(path: Path, model: torch.nn.Module, run_dir) -> CheckpointInfo:
    """Load ``path`` safely (tensors and plain containers only) and check that it is a Lightning
    checkpoint of ``model``; raise a one-line :class:`RunError` naming the fix otherwise."""
    fix = f"delete it and resume without it, or start the run again with 'dgm train ... --out {run_dir} --overwrite'"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as e:  # noqa: BLE001  (pickle, zip and format errors come in many types)
        # torch's own message suggests weights_only=False: never for a file of unknown origin
        objects = isinstance(e, pickle.UnpicklingError) and "Unsupported global" in str(e)
        why = (
            "it holds pickled Python objects, which could run code when loaded"
            if objects
            else "it is not a whole PyTorch checkpoint: cut short, or of another format"
        )
        raise RunError(f"{path} is not a checkpoint dgm can load safely ({why}); {fix}") from None
    if not isinstance(ckpt, dict) or not {"state_dict", "global_step", "loops"} <= set(ckpt):
        raise RunError(f"{path} is not a Lightning checkpoint of a dgm run; {fix}")
    expected = {f"model.{k}" for k in model.state_dict()}
    if set(ckpt["state_dict"]) != expected:
        raise RunError(f"{path} holds the weights of another model than the one in {CONFIG}; {fix}")
    callbacks = ckpt.get("callbacks", {})
    timer = callbacks.get("Timer", {}).get("time_elapsed", {})
    early = next((v for k, v in callbacks.items() if k.startswith("EarlyStop")), None)  # EarlyStop, EarlyStopping
    try:
        epochs = int(ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["completed"])
    except (KeyError, TypeError):
        epochs = int(ckpt.get("epoch", 0))
    return CheckpointInfo(path, int(ckpt["global_step"]), epochs, float(timer.get("train", 0.0)), early)
