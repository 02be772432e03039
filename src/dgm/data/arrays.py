"""Checks on user-supplied arrays: example shape, finiteness, support and labels.

Every check raises :class:`DataError` with a one-line message naming the array (``what``), the
problem and the fix, so a bad file never surfaces as a stack trace from inside numpy or torch.
"""

from __future__ import annotations

import numpy as np

from dgm.errors import DataError


def as_examples(x, what: str) -> np.ndarray:
    """``x`` as a float64 array with one example per row, in the layout dgm uses.

    (N, D) stays a batch of vectors, (N, H, W) becomes (N, 1, H, W) images and (N, C, H, W)
    stays as is. Refuses non-numeric data, other ranks, an empty set and NaN/inf values.
    """
    x = np.asarray(x)
    if x.dtype == bool:
        x = x.astype(np.uint8)
    if x.dtype.kind not in "iuf":
        raise DataError(f"{what} has dtype {x.dtype}; it must hold numbers (integers or floats)")
    if x.ndim not in (2, 3, 4):
        raise DataError(
            f"{what} has shape {x.shape}; give one example per row: (N, D) vectors, "
            "(N, H, W) grey images or (N, C, H, W) images"
        )
    if x.shape[0] == 0 or x.size == 0:
        raise DataError(f"{what} is empty (shape {x.shape}); give at least one example")
    values = x.astype(np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(f"{what} contains {int(bad.sum())} NaN or infinite values; remove or impute them")
    return values[:, None] if values.ndim == 3 else values


def infer_support(x: np.ndarray, dtype: np.dtype, levels: int | None, what: str) -> tuple[str, int | None]:
    """Support and number of levels of ``x`` (float64 values read from an array of ``dtype``).

    Values all in {0, 1} are binary; uint8 arrays are discrete with 256 levels; other
    non-negative integer values are discrete with ``max + 1`` levels; anything else is
    continuous. ``levels`` (the ``?levels=K`` option) forces discrete data with K levels.
    """
    is_int = bool(np.all(x == np.round(x))) and x.min() >= 0
    if levels is not None:
        if not is_int or x.max() >= levels:
            raise DataError(
                f"levels={levels} needs integer values in 0..{levels - 1}, but {what} has values "
                f"in [{x.min():g}, {x.max():g}]; drop the levels option or fix the data"
            )
        return ("binary", 2) if levels == 2 else ("discrete", levels)
    if is_int and x.max() <= 1:
        return "binary", 2
    if np.dtype(dtype) == np.uint8:
        return "discrete", 256
    if is_int:
        return "discrete", int(x.max()) + 1
    return "continuous", None


def encode_labels(y, n: int, what: str) -> tuple[np.ndarray, int]:
    """Labels as int64 class indices plus the number of classes.

    Non-negative integer labels (of an integer or a float dtype) keep their values
    (``num_classes = max + 1``); string labels are mapped to 0..K-1 in sorted order of the
    distinct values. Negative or fractional numbers are refused: they are not class indices
    (a regression target stored as ``y``, or -1/+1 labels to be mapped first). ``n`` is the
    number of examples the labels must match.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{what} has shape {y.shape}; labels must be one value per example, shape (N,)")
    if len(y) != n:
        raise DataError(f"{what} has {len(y)} labels but the data has {n} examples; they must match")
    if y.dtype.kind in "US":
        classes, codes = np.unique(y, return_inverse=True)
        return codes.astype(np.int64), len(classes)
    if y.dtype.kind not in "iufb":
        raise DataError(f"{what} has dtype {y.dtype}; labels must be integers 0..K-1 or strings")
    values = y.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise DataError(f"{what} contains NaN or infinite labels; every example needs a label")
    fractional = values[values != np.round(values)]
    if fractional.size:
        raise DataError(
            f"{what} holds fractional values such as {fractional[0]:g}; labels are class indices 0..K-1 "
            "(store other values under another name than the label array)"
        )
    if values.min() < 0:
        raise DataError(f"{what} holds the negative label {values.min():g}; map the labels to class indices 0..K-1")
    return values.astype(np.int64), int(values.max()) + 1
