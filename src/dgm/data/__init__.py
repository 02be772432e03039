"""Datasets and transforms: every dataset is addressed by a spec string.

>>> from dgm.data import load_dataset, list_datasets
>>> ds = load_dataset("toy2d:gmm8")
>>> ds.split("train").x.shape
torch.Size([20000, 2])
>>> ds.target.entropy()               # exact H(p) in nats, for KL = NLL - H(p)
3.5247...
>>> ds = load_dataset("mnist5k", transforms=["dequantize", "scale", "logit:0.05"], classes="0-4")

Specs: ``digits``, ``mnist5k``, ``toy2d:NAME``, ``npz:PATH``, ``idx:PATH``, ``folder:PATH``,
``csv:PATH``, ``text:PATH`` (characters) and ``wav:PATH`` (μ-law audio), with options after ``?`` (``toy2d:gmm8?n=5000``, ``csv:t.csv?label=kind``).
Transforms: ``binarize[:stochastic]``, ``dequantize``, ``scale[:-1,1]``, ``logit[:alpha]``.
Every bad input raises :class:`dgm.errors.DataError` with a one-line message.
"""

from __future__ import annotations

from dgm.data.catalog import list_datasets
from dgm.data.dataset import Collate, Dataset, load_dataset
from dgm.data.info import DataInfo
from dgm.data.splits import Split
from dgm.data.targets import Target, get_target

__all__ = [
    "Collate",
    "DataInfo",
    "Dataset",
    "Split",
    "Target",
    "get_target",
    "list_datasets",
    "load_dataset",
]
