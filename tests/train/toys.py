"""Toy models and a crash of the engine's tests: one part or two (like a GAN), with losses that turn NaN on
batches the test marks (a first example below ``MARK`` in a chosen column)."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn

from dgm.data.info import DataInfo
from dgm.models.base import GenerativeModel, ModelConfig, as_batch

MARK = -50.0  # a batch whose first example has a value below this in the watched column is marked
INFO = DataInfo((2,), "continuous")


def nan_if_marked(x: torch.Tensor, column: int | None) -> torch.Tensor:
    """NaN when the first example of ``x`` has a value below MARK in ``column``, else 1."""
    if column is None:
        return torch.tensor(1.0)
    return torch.where(x[0, column] < MARK, torch.nan, 1.0)


class SometimesNaN(GenerativeModel):
    """One parameter vector w fitted to the batch mean; the loss is NaN on marked batches (column 0)."""

    def __init__(self):
        super().__init__(ModelConfig(INFO))
        self.w = nn.Parameter(torch.zeros(2))

    def loss(self, batch, part=None):
        x = as_batch(batch).x
        return {"loss": (x.mean(0) - self.w).pow(2).sum() * nan_if_marked(x, 0)}


class TwoParts(GenerativeModel):
    """A stand-in for a GAN: a "discriminator" (a linear layer) and a "generator" (a vector fitted
    to the batch mean) trained in that order; ``nan_columns`` maps a part to the column whose
    mark makes its loss NaN. ``calls`` records the parts whose loss was computed, in order."""

    parts = ("discriminator", "generator")

    def __init__(self, nan_columns: dict[str, int] | None = None):
        super().__init__(ModelConfig(INFO))
        self.d = nn.Linear(2, 1)
        self.g = nn.Parameter(torch.zeros(2))
        self.nan_columns = nan_columns or {}
        self.calls: list[str] = []

    def part_parameters(self, part):
        return iter(self.d.parameters()) if part == "discriminator" else iter([self.g])

    def loss(self, batch, part=None):
        x = as_batch(batch).x
        self.calls.append(part)
        if part == "discriminator":
            loss = (self.d(x) - 1).pow(2).mean()
        else:
            loss = (x.mean(0) - self.g).pow(2).sum() + 0 * self.d.weight.sum()
        return {"loss": loss * nan_if_marked(x, self.nan_columns.get(part))}


class Crash(Exception):
    """What :class:`CrashAt` raises: a stand-in for a process killed mid-run."""


class CrashAt(L.Callback):
    """Crash the run once it has taken ``step`` optimizer steps (after its scheduler stepped)."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.step:
            raise Crash
