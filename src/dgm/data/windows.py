"""Cutting sequences (text, audio) into fixed-length examples without leaking between splits.

A long sequence is split into contiguous blocks, the first 80% for train, the next 10% for val and
the last 10% for test, and windows are cut within each block, so no element of val or test is
seen in training (overlapping windows of a random split would share elements across splits).

>>> block_bounds(100)
{'train': (0, 80), 'val': (80, 90), 'test': (90, 100)}
>>> windows(np.arange(7), length=3, stride=2).tolist()
[[0, 1, 2], [2, 3, 4], [4, 5, 6]]
"""

from __future__ import annotations

import numpy as np

from dgm.errors import DataError

BLOCKS = (8, 9)  # tenths: train ends at 80% of the elements, val at 90%, test takes the rest
MAX_VALUES = 2**26  # windows x length of a dataset (256 MB of float32); beyond, ask for a larger stride


def block_bounds(n: int) -> dict[str, tuple[int, int]]:
    """[start, end) of the train, val and test blocks of a sequence of ``n`` elements (80/10/10,
    in this order; integer arithmetic, so the bounds are exact)."""
    a, b = (n * tenths // 10 for tenths in BLOCKS)
    return {"train": (0, a), "val": (a, b), "test": (b, n)}


def count_windows(n: int, length: int, stride: int) -> int:
    """Number of windows :func:`windows` cuts from ``n`` elements."""
    return 0 if n < length else (n - length) // stride + 1


def check_size(lengths, length: int, stride: int, what: str) -> None:
    """A DataError when windows of sequences of ``lengths`` elements would hold more than
    :data:`MAX_VALUES` values (overlapping windows copy every element ``length / stride`` times)."""
    total = length * sum(count_windows(n, length, stride) for n in lengths)
    if total > MAX_VALUES:
        raise DataError(
            f"windows of {length} every {stride} elements of {what} make {total:,} values (at most "
            f"{MAX_VALUES:,}); use a larger ?stride= (e.g. ?stride={length}) or less data"
        )


def windows(values: np.ndarray, length: int, stride: int) -> np.ndarray:
    """Windows (M, length) of ``values`` (N,) starting at 0, stride, 2 stride, ...; a tail shorter
    than ``length`` is dropped, and M is 0 when N < length. A view: copy it before changing it."""
    if len(values) < length:
        return np.empty((0, length), dtype=values.dtype)
    return np.lib.stride_tricks.sliding_window_view(values, length)[::stride]
