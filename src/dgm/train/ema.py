"""An exponential moving average (EMA) of the weights, for validation, sampling and evaluation.

After every training batch in which an optimizer step was taken, the average ``shadow`` of
every floating-point parameter ``theta`` moves towards it:

    shadow <- d_n * shadow + (1 - d_n) * theta,   d_n = min(decay, (1 + n) / (10 + n)),

where ``n`` counts the updates so far: the warm-up of TensorFlow's
``ExponentialMovingAverage(num_updates=...)`` and of diffusers' ``EMAModel``, so the average
forgets the random initial weights in a few dozen steps instead of ``1 / (1 - decay)``.
Diffusion models sample far better from the average than from the last weights (Ho et al.
2020 use decay 0.9999; Song & Ermon 2020, "Improved techniques for training score-based
generative models", section 3.5), and so do GAN generators (Yazici et al. 2019).

Buffers (BatchNorm statistics, an initialisation flag) are not averaged: the averaged model
uses the live model's. The shadow is kept in float32 (float64 for float64 parameters) on the
parameters' device, and is part of Lightning's checkpoint with its update count, so a resumed
run continues the same average. The live weights stay the ones the optimizer trains and the
checkpoint holds; validation runs on the average (swapped in at its start, swapped back at its
end), and the engine saves the average as the run's weights.

Lightning's own ``EMAWeightAveraging`` does not fit: it has no warm-up, averages buffers,
counts skipped (non-finite) steps, swaps back before ``on_validation_end`` (where the best
weights are copied) and writes the average into the checkpoint in place of the live weights.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor, nn

from dgm.errors import ConfigError, RunError


def ema_decay(decay: float, n: int) -> float:
    """The decay of update ``n`` (counting from 0): ``min(decay, (1 + n) / (10 + n))``,
    0.1 for the first update, rising towards ``decay``."""
    return min(decay, (1 + n) / (10 + n))


def averaged_parameters(model: nn.Module) -> dict[str, Tensor]:
    """The parameters an EMA averages: every floating-point one, by name."""
    return {name: p for name, p in model.named_parameters() if p.is_floating_point()}


def shadow_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for half-precision parameters (their rounding would stall the average), else theirs."""
    return torch.promote_types(dtype, torch.float32)


class EMAWeights(L.Callback):
    """Keep an exponential moving average of ``module.model``'s parameters (see the module docstring).

    Place it after :class:`~dgm.train.callbacks.BestWeights` in the callbacks (so the best
    weights are copied while the average is swapped in) and before the periodic checkpoint (so a
    checkpoint holds the average of its own step, and the live weights after an interruption).

    >>> ema = EMAWeights(0.999)
    >>> L.Trainer(max_steps=100, callbacks=[BestWeights(), ema]).fit(GenerativeTask(model, config), loader)
    >>> ema.copy_to(model)  # the average, to save or to sample from
    """

    def __init__(self, decay: float):
        if not 0 < decay < 1:
            raise ConfigError(f"the EMA decay must be a number between 0 and 1 (exclusive), e.g. 0.999, got {decay!r}")
        self.decay = decay
        self.updates = 0
        self.shadow: dict[str, Tensor] | None = None
        self._live: dict[str, Tensor] | None = None  # the training weights while the average is swapped in
        self._before = (0, 0)  # (global step, skipped steps) when the batch started

    # ----- the average --------------------------------------------------------------------
    def start(self, model: nn.Module) -> None:
        """Start the average at the model's weights, or place a restored one beside them."""
        params = averaged_parameters(model)
        if self.shadow is None:
            self.shadow = {k: p.detach().to(dtype=shadow_dtype(p.dtype), copy=True) for k, p in params.items()}
            return
        if set(self.shadow) != set(params):
            raise RunError(
                "the checkpoint's moving average of the weights is not one of this model's parameters; "
                "resume without --ema (--set train.ema=null) or start again with --overwrite"
            )
        self.shadow = {
            k: v.to(device=params[k].device, dtype=shadow_dtype(params[k].dtype)) for k, v in self.shadow.items()
        }

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One update of the average towards the model's current weights."""
        params = averaged_parameters(model)
        shadows = list(self.shadow.values())
        live = [params[k].detach().to(s.dtype) for k, s in self.shadow.items()]
        torch._foreach_lerp_(shadows, live, 1.0 - ema_decay(self.decay, self.updates))
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> bool:
        """Load the average into ``model``'s parameters; False (and nothing done) before it started."""
        if self.shadow is None:
            return False
        params = averaged_parameters(model)
        for k, s in self.shadow.items():
            params[k].copy_(s)
        return True

    @torch.no_grad()
    def swap_in(self, model: nn.Module) -> None:
        """Put the average in ``model``, keeping its training weights aside for :meth:`swap_out`."""
        if self._live is not None or self.shadow is None:
            return
        self._live = {k: p.detach().clone() for k, p in averaged_parameters(model).items()}
        self.copy_to(model)

    @torch.no_grad()
    def swap_out(self, model: nn.Module) -> None:
        """Put the training weights back after :meth:`swap_in` (bit for bit)."""
        if self._live is None:
            return
        params = averaged_parameters(model)
        for k, p in self._live.items():
            params[k].copy_(p)
        self._live = None

    # ----- Lightning hooks ----------------------------------------------------------------
    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.start(module.model)  # the model is on its device; a resumed shadow is loaded by now

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.start(module.model)  # a strategy that restores checkpoints after setup restored it since

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch, batch_idx: int) -> None:
        self._before = (trainer.global_step, module.skipped_steps)

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, outputs, batch, batch_idx) -> None:
        steps = trainer.global_step - self._before[0]
        skipped = module.skipped_steps - self._before[1]
        # A skipped step still counts in global_step under automatic optimisation (the optimizer
        # runs with no gradients), but not under manual optimisation (its step() is not called).
        taken = steps - skipped if module.automatic_optimization else steps
        if taken > 0:  # once per batch: after the last part's step of a multi-part model
            self.update(module.model)

    def on_validation_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.swap_in(module.model)

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.swap_out(module.model)

    def on_exception(self, trainer: L.Trainer, module: L.LightningModule, exception: BaseException) -> None:
        self.swap_out(module.model)  # interrupted in validation: the checkpoint must get the live weights

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        # the decay is the one configured now: ``--resume --ema D`` continues the average with D
        self.updates = int(state["updates"])
        self.shadow = dict(state["shadow"]) if state["shadow"] is not None else None
