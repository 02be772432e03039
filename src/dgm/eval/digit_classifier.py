"""Small convolutional digit classifiers whose features define dgm's image metric spaces.

Two classifiers ship with dgm, trained by ``scripts/train_digit_classifier.py`` from the train
split only (the val split picks the epoch) and stored as safetensors with a provenance JSON:

- ``digits28``: 28x28 MNIST digits (``mnist5k``);
- ``digits8``: scikit-learn's 8x8 digits (``digits``).

Inputs are images in [0, 1] as produced by ``Dataset.to_display`` (grayscale or binarized);
the penultimate layer gives the features of FD-digits, KID and PRDC.

>>> net = load_digit_classifier("digits28")
>>> feats, logits = net.features_and_logits(torch.rand(5, 1, 28, 28))   # (5, 64), (5, 10)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from dgm.errors import DgmError

WEIGHTS_DIR = Path(__file__).parent / "weights"


@dataclass(frozen=True)
class DigitClassifierConfig:
    """Architecture of a :class:`DigitClassifier`.

    Each entry of ``channels`` is one block conv3x3 -> ReLU -> maxpool2, halving the image
    (28 -> 14 -> 7 -> 3, or 8 -> 4 -> 2); then a linear layer to ``feature_dim`` ReLU features
    and a linear layer to ``num_classes`` logits.
    """

    image_size: int = 28
    channels: tuple[int, ...] = (16, 32, 64)
    feature_dim: int = 64
    num_classes: int = 10
    dropout: float = 0.25  # on the features, during training only

    @property
    def flat_dim(self) -> int:
        side = self.image_size
        for _ in self.channels:
            side //= 2
        return self.channels[-1] * side * side

    @classmethod
    def from_dict(cls, d: dict) -> DigitClassifierConfig:
        return cls(**{**d, "channels": tuple(d["channels"])})


class DigitClassifier(nn.Module):
    """A small CNN p(y | x) on (N, 1, S, S) images in [0, 1] (S = ``config.image_size``)."""

    def __init__(self, config: DigitClassifierConfig):
        super().__init__()
        self.config = config
        layers, c_in = [], 1
        for c_out in config.channels:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        self.embed = nn.Linear(config.flat_dim, config.feature_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.feature_dim, config.num_classes)

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Penultimate features (N, feature_dim) (after ReLU) and logits (N, num_classes)."""
        h = self.conv(2.0 * x - 1.0).flatten(1)  # [0, 1] -> [-1, 1]; (N, flat_dim)
        feats = torch.relu(self.embed(h))  # (N, feature_dim)
        return feats, self.head(self.dropout(feats))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, num_classes)."""
        return self.features_and_logits(x)[1]


def weights_paths(name: str) -> tuple[Path, Path]:
    """Paths of the shipped ``NAME.safetensors`` and its provenance ``NAME.json``."""
    return WEIGHTS_DIR / f"{name}.safetensors", WEIGHTS_DIR / f"{name}.json"


def load_provenance(name: str) -> dict:
    """The provenance record of shipped classifier ``name`` (command, data, accuracies, ...)."""
    path = weights_paths(name)[1]
    if not path.is_file():
        raise DgmError(f"no shipped digit classifier '{name}'; use digits28 or digits8")
    return json.loads(path.read_text())


@cache
def load_digit_classifier(name: str) -> DigitClassifier:
    """The shipped classifier ``name`` ("digits28" or "digits8") in eval mode, frozen.

    Weights are read with ``safetensors.torch.load_file`` (no pickle) and the model is cached,
    so every caller shares one instance; do not train it.
    """
    config = DigitClassifierConfig.from_dict(load_provenance(name)["config"])
    model = DigitClassifier(config)
    model.load_state_dict(load_file(weights_paths(name)[0]))
    return model.eval().requires_grad_(False)


def config_dict(config: DigitClassifierConfig) -> dict:
    """``config`` as a JSON-ready dict (the inverse of ``DigitClassifierConfig.from_dict``)."""
    return {**asdict(config), "channels": list(config.channels)}
