"""``toy2d:<name>`` datasets: fixed-seed draws from the analytic targets in :mod:`dgm.data.targets`.

Options: ``n`` (train size, default 20000), ``n_val`` (default 2000), ``n_test`` (default
20000). Each split is drawn with its own seed, so splits are deterministic and independent.
"""

from __future__ import annotations

import torch

from dgm.data.info import DataInfo
from dgm.data.spec import DataSpec
from dgm.data.splits import Source, Split
from dgm.data.targets import TARGETS, get_target
from dgm.errors import DataError

SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3}
DEFAULT_SIZES = {"train": 20000, "val": 2000, "test": 20000}
SIZE_OPTIONS = {"train": "n", "val": "n_val", "test": "n_test"}


def load_toy2d(spec: DataSpec) -> Source:
    """Draw the train/val/test splits of ``toy2d:<name>`` from its target."""
    if not spec.arg:
        raise DataError(f"toy2d needs a name, e.g. toy2d:gmm8; known: {', '.join(TARGETS)}")
    target = get_target(spec.arg)
    spec.check_options(SIZE_OPTIONS.values())
    splits = {}
    for name, seed in SPLIT_SEEDS.items():
        n = spec.int_option(SIZE_OPTIONS[name], DEFAULT_SIZES[name])
        splits[name] = Split(target.sample(n, torch.Generator().manual_seed(seed)), None)
    return Source(DataInfo((2,), "continuous"), splits, target)
