"""The one LightningModule that trains every dgm model.

It knows nothing about the model beyond the contract: ``loss(batch, part)`` and the ordered
``parts``. A model with one part is trained with Lightning's automatic optimisation (so
gradient clipping and accumulation come from Lightning); a model with several parts (a GAN's
discriminator then generator) gets one optimiser per part and one step of each per batch,
in the declared order, with the other parts' parameters frozen during each step; a model may
skip a part on some batches (``trains_part``: a WGAN-GP generator steps once per n critic
steps) and give a part its own learning rate (``part_lr``: the two time-scale update rule).
The 2-norm of each step's gradients (before clipping) is logged as ``train/<part>/grad_norm``
(``train/grad_norm`` for one part).

A step whose gradients are not finite (a NaN or infinite loss, an overflow) is skipped: the
optimizer does not move the weights, and ``train/skipped_steps`` counts it in the logs. When
more than ``MAX_SKIPPED`` of the last ``WINDOW`` steps were skipped, training stops with a
:class:`NonFiniteLoss` error that names the remedies.

With ``lr_schedule="cosine"`` each optimizer gets a ``LambdaLR`` scheduler of
:func:`cosine_factor`, stepped once per training batch: by Lightning after the optimizer step
for one part, by :meth:`GenerativeTask.training_step` after the last part's step for several
parts. The schedule counts batches, skipped steps included, so the parts stay in phase and a
skipped step uses up its place in the schedule as it uses up a place in the budget. Lightning
saves the schedulers' step counts in its checkpoints, so a resumed run continues the schedule
where it stopped.
"""

from __future__ import annotations

import math
from collections import deque

import lightning as L
import torch

from dgm.errors import ConfigError, DgmError
from dgm.models.base import Batch, GenerativeModel, as_batch
from dgm.train.config import TrainConfig

WINDOW, MAX_SKIPPED = 100, 20


def cosine_factor(t: int, total: int) -> float:
    """The factor of the base learning rate at step ``t`` of a cosine schedule of ``total`` steps:
    ``0.5 * (1 + cos(pi * t / total))``, 1 at ``t = 0`` and 0 from ``t = total`` on (no restart).

    Cosine annealing without restarts (Loshchilov & Hutter 2017, "SGDR"), as used to train
    neural spline flows (Durkan et al. 2019).
    """
    return 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total))


def schedule_length(steps: int | None, epochs: int | None, batches_per_epoch: int | None, parts: float = 1) -> int:
    """Training batches of the whole run, the ``total`` of :func:`cosine_factor`.

    ``steps`` counts optimizer steps as the budget does: each batch takes one step per part (or
    ``parts`` steps on average, when a part skips batches), so a step budget lasts
    ``ceil(steps / parts)`` batches; an epoch budget lasts ``epochs *
    batches_per_epoch``; with both, the run ends at the smaller. Raises ConfigError with neither.
    """
    limits = []
    if steps is not None:
        limits.append(math.ceil(steps / parts))
    if epochs is not None and batches_per_epoch is not None:
        limits.append(epochs * batches_per_epoch)
    if not limits:
        raise ConfigError("--lr-schedule cosine needs --steps or --epochs to know where the schedule ends")
    return max(1, min(limits))


class NonFiniteLoss(DgmError):
    """Training keeps producing NaN or infinite losses or gradients."""


class GenerativeTask(L.LightningModule):
    """Wraps a :class:`GenerativeModel` for the Lightning Trainer."""

    def __init__(self, model: GenerativeModel, train: TrainConfig):
        super().__init__()
        self.model = model
        self.train_config = train
        self.automatic_optimization = len(model.parts) == 1
        self.skipped_steps = 0
        self.log_now = True  # whether this batch's training terms are logged
        self.recent_skips: deque[bool] = deque(maxlen=WINDOW)

    def model_batch(self, batch) -> Batch:
        """The batch as the model takes it: labels are dropped for an unconditional model."""
        batch = as_batch(batch)
        return batch if self.model.conditional else Batch(batch.x, None)

    def training_step(self, batch, batch_idx):
        batch = self.model_batch(batch)
        n = batch.x.shape[0]
        self.log_now = self._logger_writes()
        if self.automatic_optimization:
            out = self.model.loss(batch)
            self._log_terms("train", out, n)
            return out["loss"]
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for part, opt in zip(self.model.parts, optimizers, strict=True):
            if not self.model.trains_part(part):
                continue
            self.toggle_optimizer(opt)  # the other parts' parameters get no gradients
            try:
                out = self.model.loss(batch, part=part)
                opt.zero_grad(set_to_none=True)
                self.manual_backward(out["loss"])
                if self.skip_if_not_finite(opt):
                    continue
                self._log_grad_norm(opt, f"train/{part}/grad_norm")
                if self.train_config.grad_clip:
                    self.clip_gradients(
                        opt, gradient_clip_val=self.train_config.grad_clip, gradient_clip_algorithm="norm"
                    )
                opt.step()
                self._log_terms(f"train/{part}", out, n)
            finally:
                self.untoggle_optimizer(opt)
        for scheduler in self._schedulers():  # Lightning steps none in manual optimisation
            scheduler.step()
        return None

    def _schedulers(self) -> list:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return []
        return schedulers if isinstance(schedulers, list) else [schedulers]

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.automatic_optimization and not self.skip_if_not_finite(optimizer):
            self._log_grad_norm(optimizer, "train/grad_norm")

    def _logger_writes(self) -> bool:
        """Whether the loggers write this batch's values (every ``log_every_n_steps`` batches).
        Training terms are logged on those batches only: ``self.log`` costs about a millisecond a
        call, as much as a whole step of a small model, and the values of the other batches
        would be dropped anyway. Epoch means are then means over the logged batches."""
        try:
            return bool(self.trainer._logger_connector.should_update_logs)
        except (AttributeError, RuntimeError):  # no trainer (a bare module in a test): log
            return True

    def _log_grad_norm(self, optimizer, name: str) -> None:
        """Log the 2-norm of the gradients of ``optimizer``'s parameters (before clipping)."""
        if not self.log_now:
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads:
            norm = torch.nn.utils.get_total_norm(grads)
            self.log(name, norm.detach(), on_step=True, on_epoch=False)

    def skip_if_not_finite(self, optimizer) -> bool:
        """Drop the gradients of ``optimizer``'s parameters when any is not finite (the step then
        leaves those weights alone: optimizers skip parameters without a gradient); count the
        skip, and raise :class:`NonFiniteLoss` when skips become the rule. Returns True if skipped.
        In a multi-process run the gradients are already averaged, so every process agrees."""
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        finite = all(torch.isfinite(p.grad).all() for p in params)
        self.recent_skips.append(not finite)
        if finite:
            return False
        for p in params:
            p.grad = None
        self.skipped_steps += 1
        self.log("train/skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False)
        if sum(self.recent_skips) > MAX_SKIPPED:
            raise NonFiniteLoss(
                f"training stopped: the loss or its gradients were not finite in {sum(self.recent_skips)} of the "
                f"last {len(self.recent_skips)} steps ({self.skipped_steps} skipped in all); lower the learning rate "
                "(--lr), clip gradients (--grad-clip), or look for extreme values in the data"
            )
        return True

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["dgm"] = {"model": self.model.name, "skipped_steps": self.skipped_steps}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.skipped_steps = int(checkpoint.get("dgm", {}).get("skipped_steps", 0))

    def validation_step(self, batch, batch_idx):
        batch = self.model_batch(batch)
        with torch.no_grad():
            out = self.model.loss(batch)
        self._log_terms("val", out, batch.x.shape[0], on_step=False)

    def _log_terms(self, prefix: str, out: dict, n: int, on_step: bool = True) -> None:
        """Log every scalar term; only the loss goes on the progress bar. Training terms are
        logged on the batches the loggers write only (see :meth:`_logger_writes`)."""
        if on_step and not self.log_now:
            return
        for key, value in out.items():
            # a skipped step's NaN stays out of the epoch means
            if torch.is_tensor(value) and value.numel() == 1 and torch.isfinite(value):
                self.log(
                    f"{prefix}/{key}",
                    value.detach(),
                    on_step=on_step,
                    on_epoch=True,
                    prog_bar=key == "loss",
                    batch_size=n,
                    sync_dist=not on_step,
                )

    def configure_optimizers(self):
        """One AdamW per part; weight decay applies to weights, not to biases. With the cosine
        schedule, one LambdaLR per optimizer, stepped every batch; with the constant one, none."""
        optimizers = [self._optimizer(part) for part in self.model.parts]
        if self.train_config.lr_schedule == "constant":
            return optimizers
        total = self._schedule_length()
        schedulers = [torch.optim.lr_scheduler.LambdaLR(opt, lambda t: cosine_factor(t, total)) for opt in optimizers]
        if self.automatic_optimization:
            return {"optimizer": optimizers[0], "lr_scheduler": {"scheduler": schedulers[0], "interval": "step"}}
        return optimizers, schedulers

    def _optimizer(self, part: str) -> torch.optim.AdamW:
        cfg = self.train_config
        owned = {id(p) for p in self.model.part_parameters(part)}
        named = [(n, p) for n, p in self.model.named_parameters() if id(p) in owned and p.requires_grad]
        groups = [
            {"params": [p for n, p in named if not n.endswith("bias")], "weight_decay": cfg.weight_decay},
            {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
        return torch.optim.AdamW(groups, lr=self.model.part_lr(part, cfg.lr), betas=cfg.betas)

    def _schedule_length(self) -> int:
        """Batches in the run, from the Trainer's limits (which the engine sets from the budget)."""
        trainer = self.trainer
        steps = trainer.max_steps if trainer.max_steps != -1 else None
        epochs = trainer.max_epochs if trainer.max_epochs not in (None, -1) else None
        batches = None
        if epochs is not None:
            trainer.estimated_stepping_batches  # noqa: B018  (loads the training data: batches per process)
            batches = trainer.num_training_batches
            batches = int(batches) if math.isfinite(batches) else None
        steps_per_batch = sum(self.model.part_share(part) for part in self.model.parts)
        return schedule_length(steps, epochs, batches, steps_per_batch)
