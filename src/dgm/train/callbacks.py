"""Callbacks the engine adds to Lightning's own."""

from __future__ import annotations

import math
import sys
import time

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ProgressBar, RichProgressBar


class BestWeights(L.Callback):
    """Keep a CPU copy of the model weights with the lowest validation loss seen so far.

    Restored at the end when ``TrainConfig.keep == "best"``: with small training sets (3 600
    MNIST digits) a model overfits long before the budget runs out, so the last weights are
    rarely the best. The copy is part of Lightning's checkpoint, so it survives ``--resume``.
    """

    def __init__(self, monitor: str = "val/loss"):
        self.monitor = monitor
        self.best_score = math.inf
        self.best_step = -1
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        score = trainer.callback_metrics.get(self.monitor)
        if score is None or not torch.isfinite(score):
            return
        if float(score) < self.best_score:
            self.best_score = float(score)
            self.best_step = trainer.global_step
            self.best_state = {k: v.detach().cpu().clone() for k, v in module.model.state_dict().items()}

    def restore(self, module: L.LightningModule) -> bool:
        """Load the best weights into ``module.model``; False when no validation ran."""
        if self.best_state is None:
            return False
        module.model.load_state_dict(self.best_state)
        return True

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_step": self.best_step, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best_score = state["best_score"]
        self.best_step = state["best_step"]
        self.best_state = state["best_state"]


class EarlyStop(EarlyStopping):
    """Lightning's early stopping on ``val/loss``, checked after every validation.

    Its state (best score, validations without improvement) is part of the checkpoint, so a
    killed run resumes with it; the patience is the one configured for the current session,
    not the one saved, so ``--resume --patience N`` with a larger N trains an early-stopped run
    on.
    """

    def __init__(self, patience: int):
        super().__init__(monitor="val/loss", mode="min", patience=patience, check_on_train_epoch_end=False)

    def load_state_dict(self, state_dict: dict) -> None:
        patience = self.patience
        super().load_state_dict(state_dict)
        self.patience = patience

    @property
    def stopped(self) -> bool:
        """True when this callback ended training."""
        return self.wait_count >= self.patience


class _WithoutVersion:
    """Progress-bar mixin: show the logged metrics without Lightning's ``v_num``."""

    def get_metrics(self, trainer, module):
        metrics = super().get_metrics(trainer, module)
        metrics.pop("v_num", None)
        return metrics


class RichBar(_WithoutVersion, RichProgressBar):
    """Lightning's rich progress bar without ``v_num``."""


class LogLines(_WithoutVersion, ProgressBar):
    """Progress for logs and CI: one line per epoch at most every ``seconds`` (and after the first
    and last epoch), instead of a bar redrawn many times a second that fills log files and pipes.

    ``epoch 49  step 1600  train/loss_epoch 19.9  val/loss 21.4  58.9 steps/s``
    """

    def __init__(self, seconds: float = 30.0):
        super().__init__()
        self.seconds = seconds
        self._enabled = True
        self._last_time = 0.0
        self._last_step = 0
        self._first = True

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def on_train_start(self, trainer, module) -> None:
        self._last_time, self._last_step = time.monotonic(), trainer.global_step
        self._first = True

    def on_train_epoch_end(self, trainer, module) -> None:
        if self._first or time.monotonic() - self._last_time >= self.seconds:
            self._write(trainer, module)

    def on_train_end(self, trainer, module) -> None:
        if trainer.global_step > self._last_step:
            self._write(trainer, module)

    def _write(self, trainer, module) -> None:
        now = time.monotonic()
        speed = (trainer.global_step - self._last_step) / max(now - self._last_time, 1e-9)
        shown = {k: v for k, v in self.get_metrics(trainer, module).items() if not k.endswith("_step")}
        values = "  ".join(f"{k} {float(v):.4g}" for k, v in shown.items() if isinstance(v, (int, float)))
        if self._enabled and trainer.is_global_zero:
            print(
                f"epoch {trainer.current_epoch}  step {trainer.global_step}  {values}  {speed:.1f} steps/s",
                file=sys.stderr,
                flush=True,
            )
        self._last_time, self._last_step, self._first = now, trainer.global_step, False


def progress_bar() -> L.Callback:
    """A rich bar in a terminal; a line now and then in logs, pipes and CI."""
    return RichBar() if sys.stderr.isatty() else LogLines()
