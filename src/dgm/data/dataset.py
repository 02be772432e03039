"""A loaded dataset: raw splits, a fitted transform chain, loaders and display helpers.

>>> ds = load_dataset("mnist5k", transforms=["binarize"])
>>> ds.info                          # after the transforms
DataInfo(shape=(1, 28, 28), support='binary', levels=2, num_classes=10)
>>> batch = next(iter(ds.loader("train", 64, shuffle=True)))   # Batch(x (64,1,28,28), cond (64,))
>>> x, ladj = ds.transformed("test")  # the whole test split, deterministic, with log|det|
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from dgm.data.catalog import load_source
from dgm.data.classes import filter_classes, parse_classes
from dgm.data.spec import parse_spec
from dgm.data.splits import SPLITS, Source, Split
from dgm.data.targets import Target
from dgm.data.transforms import Transform, apply_transforms, fit_transforms, undo_transforms
from dgm.errors import DataError


class Collate:
    """DataLoader ``collate_fn``: stacks examples, applies the transform chain and returns a
    :class:`dgm.models.base.Batch`. Stochastic transforms draw from torch's global RNG, so
    every batch gets fresh noise. A plain picklable object, so DataLoader workers and
    Lightning's DDP re-instantiation can copy it."""

    def __init__(self, chain: Sequence[Transform]):
        self.chain = tuple(chain)

    def __call__(self, items: tuple[Tensor, ...] | list[tuple[Tensor, ...]]):
        from dgm.models.base import Batch  # late: dgm.models imports every model

        if isinstance(items, tuple):  # already stacked by BatchedTensors
            x, y = items[0], (items[1] if len(items) > 1 else None)
        else:
            x = torch.stack([item[0] for item in items])
            y = torch.stack([item[1] for item in items]) if len(items[0]) > 1 else None
        x, _ = apply_transforms(self.chain, x)
        return Batch(x, y)


class BatchedTensors(TensorDataset):
    """A TensorDataset that hands the DataLoader a whole batch by one indexing per tensor
    (``__getitems__``) rather than one ``__getitem__`` per example and a stack: a batch of 512
    toy points costs microseconds instead of milliseconds. Samplers, shuffling and Lightning's
    distributed sampler work as with any map-style dataset."""

    def __getitems__(self, indices: list[int]) -> tuple[Tensor, ...]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return tuple(tensor[index] for tensor in self.tensors)


class Dataset:
    """A dataset addressed by a spec, with deterministic train/val/test splits and transforms.

    Attributes: ``spec`` (as given), ``transforms`` (names as given), ``raw_info`` (DataInfo of
    the raw data), ``info`` (after the transforms), ``target`` (the analytic toy target or
    None), ``classes`` (kept classes or None), ``class_names`` (names of all classes, or ()),
    ``notes`` (what loading changed in the data, e.g. resized images, or ()).
    Build one with :func:`load_dataset`.
    """

    def __init__(
        self,
        spec: str,
        source: Source,
        transforms: Sequence[str] = (),
        classes: tuple[int, ...] | None = None,
    ):
        self.spec = spec
        self.transforms = tuple(transforms)
        self.raw_info = source.info
        self.target: Target | None = source.target
        self.classes = classes
        self.class_names = source.class_names
        self.notes = source.notes
        self._splits = source.splits
        self._chain, self.info = fit_transforms(self.transforms, source.info, source.splits["train"].x)

    def __repr__(self) -> str:
        return f"Dataset({self.spec!r}, transforms={self.transforms!r})"

    def split(self, name: str) -> Split:
        """Raw split ``name`` ("train", "val" or "test"): x float32 (N, *shape), y long (N,) or None."""
        if name not in self._splits:
            raise DataError(f"unknown split '{name}'; use one of {', '.join(SPLITS)}")
        return self._splits[name]

    def loader(self, split_name: str, batch_size: int, shuffle: bool, drop_last: bool = False) -> DataLoader:
        """A standard DataLoader over split ``split_name`` yielding transformed ``Batch(x, cond)``."""
        split = self.split(split_name)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
        tensors = (split.x,) if split.y is None else (split.x, split.y)
        return DataLoader(
            BatchedTensors(*tensors),
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            collate_fn=Collate(self._chain),
        )

    def apply_transforms(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Transform raw data ``x`` (N, *raw shape): returns y and ladj (N,) float64, where
        log p(x) = log q(y) + ladj. Stochastic transforms draw from ``generator``."""
        return apply_transforms(self._chain, torch.as_tensor(x, dtype=torch.float32), generator)

    def transformed(self, split_name: str, seed: int = 0) -> tuple[Tensor, Tensor]:
        """The whole split transformed, with noise from ``torch.Generator().manual_seed(seed)``:
        (y (N, *info.shape) float32, ladj (N,) float64)."""
        return self.apply_transforms(self.split(split_name).x, torch.Generator().manual_seed(seed))

    def to_display(self, x: Tensor) -> Tensor:
        """Model-space data or samples mapped back for showing: images as (N, C, H, W) in [0, 1],
        vectors in raw units, text and audio as their levels (N, T) (characters, μ-law levels). Inverts the transforms best effort (logit -> sigmoid, scale ->
        unscale, dequantize -> floor), then divides image levels by (levels - 1)."""
        x = torch.as_tensor(x).detach().to("cpu", torch.float32)
        if tuple(x.shape[1:]) != self.info.shape and x[0].numel() == self.info.dim:
            x = x.reshape(-1, *self.info.shape)
        x = undo_transforms(self._chain, x)
        raw = self.raw_info
        if not raw.is_image:
            return x
        if raw.levels is not None:
            return (x / max(raw.levels - 1, 1)).clamp(0.0, 1.0)
        train = self._splits["train"].x
        low, high = float(train.min()), float(train.max())
        return ((x - low) / max(high - low, 1e-12)).clamp(0.0, 1.0)

    def describe(self) -> str:
        """One line: spec, split sizes, the raw data, classes, notes on loading and transforms."""
        sizes = ", ".join(f"{name} {self._splits[name].n}" for name in SPLITS)
        labels = f", {self.raw_info.num_classes} classes" if self.raw_info.num_classes else ", unlabelled"
        if self.classes is not None:
            labels += f" (kept {class_ranges(self.classes)})"
        line = f"{self.spec}: {sizes}; {self.raw_info.describe()}{labels}"
        line += "".join(f"; {note}" for note in self.notes)
        if self.transforms:
            line += f"; transforms {', '.join(self.transforms)} -> {self.info.describe()}"
        return line


def class_ranges(values: Sequence[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5"."""
    parts, start = [], None
    for i, v in enumerate(values):
        start = v if start is None else start
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(str(v) if start == v else f"{start}-{v}")
            start = None
    return ",".join(parts)


def load_dataset(
    spec: str,
    transforms: Sequence[str] | str = (),
    classes: Sequence[int] | str | None = None,
) -> Dataset:
    """Load the dataset addressed by ``spec`` with the transform chain ``transforms``.

    ``spec`` is ``digits``, ``mnist5k``, ``toy2d:NAME[?n=N]``, ``npz:PATH``, ``idx:PATH``,
    ``folder:PATH[?size=H]``, ``csv:PATH[?label=COLUMN]``, or a sequence:
    ``text:PATH[?length=T&stride=S]`` (characters of a UTF-8 file) or
    ``wav:PATH[?rate=HZ&length=T&stride=S]`` (a WAV file or folder, μ-law levels); sequences
    take no transforms. ``classes`` keeps only some labels (``[0, 1]`` or ``"0-8"``); labels
    keep their values. Bad input raises DataError.
    """
    if transforms is None:
        transforms = ()
    elif isinstance(transforms, str):
        transforms = (transforms,)
    parsed = parse_spec(spec)
    source = load_source(parsed)
    kept = None
    if classes is not None:
        source.splits = filter_classes(source.splits, classes, source.info.num_classes, spec)
        kept = parse_classes(classes, source.info.num_classes)
    for name, split in source.splits.items():
        if split.n == 0:
            raise DataError(f"the '{name}' split of '{spec}' is empty; give more examples")
    if not math.prod(source.info.shape):
        raise DataError(f"examples of '{spec}' have shape {source.info.shape} with no values")
    return Dataset(spec, source, transforms, kept)
