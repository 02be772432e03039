"""What a model needs to know about its data: shape, support and labels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Support = Literal["binary", "discrete", "continuous"]


@dataclass(frozen=True)
class DataInfo:
    """Description of one example of a dataset, after its transforms.

    - ``shape``: shape of one example, ``(C, H, W)`` for images, ``(D,)`` for vectors.
    - ``support``: ``"binary"`` (values in {0, 1}), ``"discrete"`` (integers 0..levels-1) or
      ``"continuous"`` (real values).
    - ``levels``: number of discrete values (2 for binary, e.g. 17 for ``digits``, 256 for 8-bit
      images); ``None`` for continuous data.
    - ``num_classes``: number of label classes (0 when the data has no labels).
    """

    shape: tuple[int, ...]
    support: Support
    levels: int | None = None
    num_classes: int = 0

    @property
    def dim(self) -> int:
        """Number of dimensions D of one example (product of ``shape``)."""
        return math.prod(self.shape)

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    def describe(self) -> str:
        kind = {"binary": "binary", "discrete": f"discrete with {self.levels} levels"}.get(self.support, "continuous")
        return f"{kind} data of shape {tuple(self.shape)}"
