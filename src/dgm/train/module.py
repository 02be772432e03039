"""The one LightningModule that trains every dgm model.

It knows nothing about the model beyond the contract: ``loss(batch, part)`` and the ordered
``parts``. A model with one part is trained with Lightning's automatic optimisation (so
gradient clipping and accumulation come from Lightning); a model with several parts (a GAN's
discriminator then generator) gets one optimiser per part and one step of each per batch,
in the declared order.

A step whose gradients are not finite (a NaN or infinite loss, an overflow) is skipped: the
optimizer does not move the weights, and ``train/skipped_steps`` counts it in the logs. When
more than ``MAX_SKIPPED`` of the last ``WINDOW`` steps were skipped, training stops with a
:class:`NonFiniteLoss` error that names the remedies.
"""

from __future__ import annotations

from collections import deque

import lightning as L
import torch

from dgm.errors import DgmError
from dgm.models.base import Batch, GenerativeModel, as_batch
from dgm.train.config import TrainConfig

WINDOW, MAX_SKIPPED = 100, 20


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
        self.recent_skips: deque[bool] = deque(maxlen=WINDOW)

    def model_batch(self, batch) -> Batch:
        """The batch as the model takes it: labels are dropped for an unconditional model."""
        batch = as_batch(batch)
        return batch if self.model.conditional else Batch(batch.x, None)

    def training_step(self, batch, batch_idx):
        batch = self.model_batch(batch)
        n = batch.x.shape[0]
        if self.automatic_optimization:
            out = self.model.loss(batch)
            self._log_terms("train", out, n)
            return out["loss"]
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        for part, opt in zip(self.model.parts, optimizers, strict=True):
            out = self.model.loss(batch, part=part)
            opt.zero_grad(set_to_none=True)
            self.manual_backward(out["loss"])
            if self.skip_if_not_finite(opt):
                continue
            if self.train_config.grad_clip:
                self.clip_gradients(opt, gradient_clip_val=self.train_config.grad_clip, gradient_clip_algorithm="norm")
            opt.step()
            self._log_terms(f"train/{part}", out, n)
        return None

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.automatic_optimization:
            self.skip_if_not_finite(optimizer)

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
        """Log every scalar term; only the loss goes on the progress bar."""
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
        """One AdamW per part; weight decay applies to weights, not to biases."""
        cfg = self.train_config
        optimizers = []
        for part in self.model.parts:
            owned = {id(p) for p in self.model.part_parameters(part)}
            named = [(n, p) for n, p in self.model.named_parameters() if id(p) in owned and p.requires_grad]
            groups = [
                {"params": [p for n, p in named if not n.endswith("bias")], "weight_decay": cfg.weight_decay},
                {"params": [p for n, p in named if n.endswith("bias")], "weight_decay": 0.0},
            ]
            groups = [g for g in groups if g["params"]]
            optimizers.append(torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas))
        return optimizers
