"""The Lightning wrapper: optimizer groups, and alternating steps for models with several parts."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from dgm.train.config import TrainConfig
from dgm.train.module import GenerativeTask, NonFiniteLoss
from tests.conftest import bare_trainer
from tests.train.toys import SometimesNaN, TwoParts


def _fit(model, data: torch.Tensor) -> tuple[GenerativeTask, L.Trainer]:
    """One epoch of ``model`` on ``data`` in batches of 4, lr 0.1, nothing written."""
    task = GenerativeTask(model, TrainConfig(lr=0.1))
    trainer = bare_trainer()
    trainer.fit(task, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=4))
    return task, trainer


def test_multi_part_models_get_one_optimizer_step_per_part_per_batch_in_order():
    model = TwoParts()
    d_before, g_before = model.d.weight.detach().clone(), model.g.detach().clone()
    task, trainer = _fit(model, torch.randn(12, 2) + 3.0)
    assert not task.automatic_optimization
    assert model.calls == ["discriminator", "generator"] * 3
    assert not torch.equal(model.d.weight, d_before) and not torch.equal(model.g.detach(), g_before)
    assert len(trainer.optimizers) == 2


def test_weight_decay_applies_to_weights_but_not_biases():
    model = TwoParts()
    task = GenerativeTask(model, TrainConfig(weight_decay=0.5))
    d_opt, g_opt = task.configure_optimizers()
    decay = {id(p): g["weight_decay"] for g in d_opt.param_groups for p in g["params"]}
    assert decay[id(model.d.weight)] == 0.5 and decay[id(model.d.bias)] == 0.0
    assert [id(p) for g in g_opt.param_groups for p in g["params"]] == [id(model.g)]


def test_a_step_with_a_nan_loss_is_skipped_and_leaves_the_weights_finite():
    data = torch.full((40, 2), 3.0)
    data[8] = -100.0  # the first example of the third batch
    model = SometimesNaN()
    task, _ = _fit(model, data)
    assert task.skipped_steps == 1
    assert torch.isfinite(model.w).all() and (model.w > 0).all()  # the other nine steps moved it


def test_training_that_keeps_producing_nan_stops_with_an_error_naming_the_remedies():
    data = torch.full((400, 2), 3.0)
    data[::4] = -100.0  # every batch
    with pytest.raises(NonFiniteLoss, match="not finite in 21 of the last 21 steps.*--lr.*--grad-clip"):
        _fit(SometimesNaN(), data)
