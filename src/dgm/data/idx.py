"""``idx:PATH``: images in the IDX format of MNIST and Fashion-MNIST, gzipped or not.

``idx:data/train-images-idx3-ubyte.gz`` reads the images (N, H, W) as (N, 1, H, W) with 256
levels; labels come from the sibling file named with ``images-idx3`` replaced by
``labels-idx1`` (with or without ``.gz``) when it exists. The set is split 80/10/10.

An IDX file is: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions,
the dimensions as big-endian uint32, then the values in row-major order.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np

from dgm.data.arrays import as_examples, encode_labels, infer_support
from dgm.data.info import DataInfo
from dgm.data.spec import DataSpec
from dgm.data.splits import Source, split_arrays
from dgm.errors import DataError

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """The array stored in IDX file ``path`` (gzip detected from the content, not the name)."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read {path} ({type(err).__name__}: {err}); the file may be corrupt") from None
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in IDX_TYPES:
        raise DataError(f"{path} is not an IDX file (bad header); give a *-images-idx3-ubyte[.gz] file")
    ndim = raw[3]
    start = 4 + 4 * ndim
    if ndim == 0 or len(raw) < start:
        raise DataError(f"{path} is not an IDX file (bad header); give a *-images-idx3-ubyte[.gz] file")
    dims = struct.unpack(f">{ndim}I", raw[4:start])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - start != expected:
        raise DataError(
            f"{path} is truncated or corrupt: its header promises {expected} bytes of data "
            f"for shape {dims}, the file holds {len(raw) - start}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=start).reshape(dims).astype(dtype.newbyteorder("="))


def label_file(path: Path) -> Path | None:
    """The sibling labels file of an images file, if it exists."""
    name = path.name
    for a, b in (("images-idx3", "labels-idx1"), ("images.idx3", "labels.idx1")):
        if a in name:
            stem = name.replace(a, b).removesuffix(".gz")
            for candidate in (path.with_name(stem + ".gz"), path.with_name(stem)):
                if candidate.is_file():
                    return candidate
    return None


def load_idx(spec: DataSpec) -> Source:
    """Load ``idx:PATH`` (see the module docstring)."""
    spec.check_options(())
    path = spec.path()
    images = read_idx(path)
    if images.ndim != 3:
        raise DataError(f"{path} holds an array of shape {images.shape}; an IDX image file holds (N, H, W)")
    x = as_examples(images, f"IDX images {path}")
    if images.dtype == np.uint8:
        support, levels = "discrete", 256
    else:
        support, levels = infer_support(x, images.dtype, None, f"IDX images {path}")
    y, num_classes = None, 0
    labels_path = label_file(path)
    if labels_path is not None:
        y, num_classes = encode_labels(read_idx(labels_path), len(x), f"IDX labels {labels_path}")
    info = DataInfo(tuple(int(d) for d in x.shape[1:]), support, levels, num_classes)
    return Source(info, split_arrays(x, y, str(path)))
