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
    - ``vocab``: for text (``text:PATH``), the characters of levels 0..levels-1, in order; it is
      saved with the model's config, so a run decodes its samples without the text file.
    - ``sample_rate``: for audio (``wav:PATH``), samples per second of the μ-law levels.

    Text and audio examples are sequences: shape ``(T,)``, discrete, one level per element.
    """

    shape: tuple[int, ...]
    support: Support
    levels: int | None = None
    num_classes: int = 0
    vocab: str | None = None
    sample_rate: int | None = None

    @property
    def dim(self) -> int:
        """Number of dimensions D of one example (product of ``shape``)."""
        return math.prod(self.shape)

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    @property
    def is_sequence(self) -> bool:
        """Text or audio: a sequence of T discrete elements."""
        return self.vocab is not None or self.sample_rate is not None

    def describe(self) -> str:
        if self.vocab is not None:
            return f"text of {self.shape[0]} characters from a vocabulary of {self.levels}"
        if self.sample_rate is not None:
            return f"audio of {self.shape[0]} samples at {self.sample_rate} Hz, {self.levels} mu-law levels"
        kind = {"binary": "binary", "discrete": f"discrete with {self.levels} levels"}.get(self.support, "continuous")
        return f"{kind} data of shape {tuple(self.shape)}"
