"""User arrays and tables: ``npz:PATH`` and ``csv:PATH``.

``npz:PATH`` reads array ``x`` (and labels ``y`` if present), or given splits ``x_train``,
``x_test`` (+ ``y_train``, ``y_test``, optional ``x_val``/``y_val``). Options: ``x=NAME`` and
``label=NAME`` rename the arrays, ``levels=K`` declares K discrete levels. A plain ``.npy``
file is read as ``x``.

``csv:PATH`` reads numeric columns under a header row; ``label=COLUMN`` names the label
column, whose distinct values are mapped to 0..K-1 in sorted order.

Files that give no splits are split 80/10/10 by a fixed permutation; given a train split but
no val split, 10% of train is held out as val.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dgm.data.arrays import as_examples, encode_labels, infer_support
from dgm.data.info import DataInfo
from dgm.data.spec import DataSpec
from dgm.data.splits import Source, carve_val_indices, make_split, split_arrays
from dgm.errors import DataError


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"x": loaded}
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    except Exception as err:  # a corrupt file fails anywhere inside numpy/zipfile
        raise DataError(
            f"cannot read {path} as .npz ({type(err).__name__}: {str(err)[:80]}); "
            "write it with numpy.savez(path, x=..., y=...)"
        ) from None


def _split_arrays_given(arrays: dict[str, np.ndarray], xkey: str, ykey: str, path: Path):
    """{split: (x, y or None)} from arrays ``x_train``/``x_test`` (optional ``x_val``)."""
    names = [s for s in ("train", "val", "test") if f"{xkey}_{s}" in arrays]
    xs = {s: arrays[f"{xkey}_{s}"] for s in names}
    ys = {s: arrays.get(f"{ykey}_{s}") for s in names}
    if any(y is not None for y in ys.values()) and any(y is None for y in ys.values()):
        missing = [f"{ykey}_{s}" for s, y in ys.items() if y is None]
        raise DataError(f"{path} has labels for some splits but not {', '.join(missing)}; give all or none")
    return xs, ys


def load_npz(spec: DataSpec) -> Source:
    """Load ``npz:PATH`` (see the module docstring)."""
    spec.check_options(("x", "label", "levels"))
    path = spec.path()
    levels = spec.int_option("levels", None, minimum=2)
    xkey, ykey = spec.options.get("x", "x"), spec.options.get("label", "y")
    arrays = _read_npz(path)
    listing = ", ".join(arrays) or "none"
    if xkey in arrays:
        y = arrays.get(ykey)
        if y is None and "label" in spec.options:
            raise DataError(f"{path} has no label array '{ykey}'; arrays in the file: {listing}")
        xs, ys = {"all": arrays[xkey]}, {"all": y}
    elif f"{xkey}_train" in arrays and f"{xkey}_test" in arrays:
        xs, ys = _split_arrays_given(arrays, xkey, ykey, path)
        if "label" in spec.options and all(y is None for y in ys.values()):
            raise DataError(f"{path} has no label arrays '{ykey}_train', '{ykey}_test'; arrays in the file: {listing}")
    else:
        raise DataError(
            f"{path} has no array '{xkey}' (nor '{xkey}_train' and '{xkey}_test'); arrays in the file: {listing}"
        )
    dtype = next(iter(xs.values())).dtype
    xs = {s: as_examples(x, f"array '{xkey if s == 'all' else f'{xkey}_{s}'}' in {path}") for s, x in xs.items()}
    shapes = {x.shape[1:] for x in xs.values()}
    if len(shapes) > 1:
        raise DataError(f"the splits in {path} have different example shapes {sorted(shapes)}; they must match")
    support, n_levels = infer_support(np.concatenate(list(xs.values())), dtype, levels, f"'{xkey}' in {path}")
    num_classes, ys = _encode_split_labels(xs, ys, f"labels '{ykey}' in {path}")
    info = DataInfo(tuple(int(d) for d in next(iter(shapes))), support, n_levels, num_classes)
    return Source(info, _make_splits(xs, ys, str(path)))


def _encode_split_labels(xs: dict, ys: dict, what: str) -> tuple[int, dict]:
    """Encode the labels of all splits together, so they share one class numbering."""
    if all(y is None for y in ys.values()):
        return 0, ys
    parts = []
    for s, y in ys.items():
        y = np.asarray(y)
        y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
        if y.ndim != 1:
            raise DataError(f"{what} has shape {y.shape}; labels must be one value per example, shape (N,)")
        if len(y) != len(xs[s]):
            raise DataError(f"{what} has {len(y)} labels but the data has {len(xs[s])} examples; they must match")
        parts.append(y)
    codes, num_classes = encode_labels(np.concatenate(parts), sum(len(x) for x in xs.values()), what)
    bounds = np.cumsum([0] + [len(x) for x in xs.values()])
    return num_classes, {s: codes[a:b] for s, a, b in zip(xs, bounds[:-1], bounds[1:], strict=True)}


def _make_splits(xs: dict, ys: dict, what: str) -> dict:
    """Splits from ``{"all": x}`` (random 80/10/10) or from given train/test (and maybe val)."""
    if "all" in xs:
        return split_arrays(xs["all"], ys["all"], what)
    if "val" not in xs:
        index = carve_val_indices(len(xs["train"]), what)
        y = ys["train"]
        for s in ("val", "train"):  # val first: it reads the original train arrays
            i = index[s]
            xs[s], ys[s] = xs["train"][i], None if y is None else y[i]
    return {s: make_split(xs[s], ys[s]) for s in ("train", "val", "test")}


# ----- csv ----------------------------------------------------------------------------------


def _read_rows(path: Path) -> list[list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read {path} as CSV text ({type(err).__name__}); save it as UTF-8 CSV") from None
    if len(rows) < 2:
        raise DataError(f"{path} has no data rows; a CSV needs a header row and at least one data row")
    width = len(rows[0])
    for r, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise DataError(f"row {r} of {path} has {len(row)} values but the header has {width} columns")
    return rows


def _column(rows: list[list[str]], j: int, path: Path) -> np.ndarray:
    name = rows[0][j].strip()
    values = np.empty(len(rows) - 1)
    for r, row in enumerate(rows[1:]):
        try:
            values[r] = float(row[j])
        except ValueError:
            raise DataError(
                f"column '{name}' of {path} is not numeric (row {r + 2}: {row[j]!r}); "
                f"remove it, or name it as the label with ?label={name}"
            ) from None
    return values


def _csv_labels(cells: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels mapped to 0..K-1 in sorted order of their distinct values (numeric if all are),
    and the value of each class as text."""
    cells = [c.strip() for c in cells]
    try:
        values: np.ndarray = np.array([float(c) for c in cells])
    except ValueError:
        values = np.array(cells)
    classes, first, codes = np.unique(values, return_index=True, return_inverse=True)
    return codes.astype(np.int64), tuple(cells[i] for i in first)


def load_csv(spec: DataSpec) -> Source:
    """Load ``csv:PATH`` (see the module docstring)."""
    spec.check_options(("label",))
    path = spec.path()
    rows = _read_rows(path)
    header = [h.strip() for h in rows[0]]
    label = spec.options.get("label")
    if label is not None and label not in header:
        raise DataError(f"{path} has no column '{label}'; its columns are: {', '.join(header)}")
    features = [j for j, h in enumerate(header) if h != label]
    if not features:
        raise DataError(f"{path} has no feature columns besides the label '{label}'")
    x = as_examples(np.stack([_column(rows, j, path) for j in features], axis=1), f"CSV {path}")
    y, names = None, ()
    if label is not None:
        y, names = _csv_labels([row[header.index(label)] for row in rows[1:]])
    info = DataInfo((x.shape[1],), "continuous", None, len(names))
    return Source(info, split_arrays(x, y, str(path)), class_names=names)
