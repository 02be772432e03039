"""Train/val/test splits and the raw data every source kind produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from torch import Tensor

from dgm.data.info import DataInfo
from dgm.errors import DataError

if TYPE_CHECKING:
    from dgm.data.targets import Target

SPLITS = ("train", "val", "test")
SPLIT_SEED = 0  # numpy.random.default_rng(SPLIT_SEED) permutes files that give no splits


class Split(NamedTuple):
    """One split of raw data: ``x`` float32 (N, *shape) and labels ``y`` long (N,) or None."""

    x: Tensor
    y: Tensor | None = None

    @property
    def n(self) -> int:
        """Number of examples N."""
        return int(self.x.shape[0])


@dataclass
class Source:
    """What loading a spec gives: the raw :class:`DataInfo`, the three splits, the analytic
    target for toy data (``None`` otherwise), class names where the data has them, and notes
    on what loading changed in the data (shown by ``Dataset.describe``)."""

    info: DataInfo
    splits: dict[str, Split]
    target: Target | None = None
    class_names: tuple[str, ...] = ()  # names of classes 0..K-1 where the data gives them
    notes: tuple[str, ...] = ()  # e.g. "resized to 32x32 (12 of 40 images)"


def make_split(x: np.ndarray | Tensor, y: np.ndarray | Tensor | None = None) -> Split:
    """A :class:`Split` holding copies of ``x`` as float32 and ``y`` as int64."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32).clone()
    if y is not None:
        y = torch.as_tensor(np.asarray(y), dtype=torch.long).clone()
    return Split(x, y)


def random_split_indices(n: int, what: str, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Indices of an 80/10/10 train/val/test split of ``n`` examples.

    The permutation is ``numpy.random.default_rng(seed).permutation(n)``; val and test take
    ``n // 10`` examples each, train the rest. Indices are sorted within each split so
    examples keep their order in the file.
    """
    if n < 10:
        raise DataError(
            f"{what} has {n} examples, too few to split 80/10/10 into train/val/test; "
            "give at least 10 examples or give the splits (x_train, x_test) yourself"
        )
    perm = np.random.default_rng(seed).permutation(n)
    n_held = n // 10
    n_train = n - 2 * n_held
    parts = {"train": perm[:n_train], "val": perm[n_train : n_train + n_held], "test": perm[n_train + n_held :]}
    return {name: np.sort(idx) for name, idx in parts.items()}


def carve_val_indices(n_train: int, what: str, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """Split ``n_train`` given training examples into train (90%) and val (10%, at least 1)."""
    if n_train < 2:
        raise DataError(f"{what} has {n_train} training examples; need at least 2 to hold out a val split")
    perm = np.random.default_rng(seed).permutation(n_train)
    n_val = max(1, n_train // 10)
    return {"train": np.sort(perm[n_val:]), "val": np.sort(perm[:n_val])}


def split_arrays(x: np.ndarray, y: np.ndarray | None, what: str, seed: int = SPLIT_SEED) -> dict[str, Split]:
    """The 80/10/10 random split of arrays ``x`` (N, ...) and labels ``y`` (N,) or None."""
    index = random_split_indices(len(x), what, seed)
    return {name: make_split(x[i], None if y is None else y[i]) for name, i in index.items()}
