"""Feature spaces for image sample-quality metrics, and the metrics computed in them.

The space is chosen from a dataset's raw :class:`DataInfo` (see :func:`feature_space`):

- ``digits28`` for (1, 28, 28) images and ``digits8`` for (1, 8, 8) images: the penultimate
  features (64-d) of dgm's shipped digit classifiers (:mod:`dgm.eval.digit_classifier`), which
  also give class probabilities p(y | x);
- ``random-conv`` for any other image shape: a *fallback* of fixed-seed random convolutional
  features, as used for PRDC by Naeem et al. (2020). It has no classes and its numbers only
  compare models on the same data.

Fréchet distances are reported as "FD-digits" (or "FD-random-conv"), never FID: the space is
not Inception's, so the values are not comparable to published FID numbers.

>>> space = feature_space(load_dataset("mnist5k").raw_info)
>>> metrics = image_sample_metrics(real_images01, fake_images01, space)   # metrics.json entries
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm.data.info import DataInfo
from dgm.errors import DgmError
from dgm.eval.digit_classifier import load_digit_classifier
from dgm.eval.sample_quality import (
    density_coverage,
    frechet_distance,
    kernel_inception_distance,
    precision_recall,
)

DIGIT_SPACES = {(1, 28, 28): "digits28", (1, 8, 8): "digits8"}
FALLBACK = "random-conv"


class RandomConvFeatures(nn.Module):
    """Fixed random CNN features for images of any shape (C, H, W) in [0, 1] -> (N, 128).

    Three blocks conv3x3 -> ReLU (32, 64, 32 channels), average pooling halving the image after
    the first two, then adaptive average pooling to 2x2: 32 * 2 * 2 = 128 features. Weights
    are N(0, 2 / fan_in) (He) and biases 0, drawn from ``torch.Generator().manual_seed(seed)``,
    so every process builds the same network.
    """

    def __init__(self, in_channels: int, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.convs = nn.ModuleList()
        for c_in, c_out in ((in_channels, 32), (32, 64), (64, 32)):
            conv = nn.Conv2d(c_in, c_out, 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / (c_in * 9)) ** 0.5)
                conv.bias.zero_()
            self.convs.append(conv)
        self.requires_grad_(False).eval()

    def forward(self, x: Tensor) -> Tensor:
        h = 2.0 * x - 1.0  # [0, 1] -> [-1, 1]
        for i, conv in enumerate(self.convs):
            h = torch.relu(conv(h))
            if i < 2:  # halve, but never below 1 pixel
                h = F.adaptive_avg_pool2d(h, (max(h.shape[-2] // 2, 1), max(h.shape[-1] // 2, 1)))
        return F.adaptive_avg_pool2d(h, (2, 2)).flatten(1)  # (N, 128)


class FeatureSpace:
    """A fixed network mapping images (N, *shape) in [0, 1] to features (N, F).

    Attributes: ``name`` ("digits28", "digits8" or "random-conv"), ``shape`` (C, H, W),
    ``fallback`` (True for random features, which have no classes), ``fd_label`` ("FD-digits"
    or "FD-random-conv").
    """

    def __init__(self, name: str, shape: tuple[int, ...], network: nn.Module, fallback: bool):
        self.name, self.shape, self.network, self.fallback = name, tuple(shape), network, fallback
        self.fd_label = f"FD-{name}" if fallback else "FD-digits"

    def __repr__(self) -> str:
        return f"FeatureSpace({self.name!r}, shape={self.shape}, fallback={self.fallback})"

    def _check(self, images01) -> Tensor:
        x = torch.as_tensor(images01).detach().to("cpu", torch.float32)
        if tuple(x.shape[1:]) != self.shape:
            raise DgmError(f"the {self.name} feature space takes images of shape {self.shape}, got {tuple(x.shape)}")
        if x.numel() and not (torch.isfinite(x).all() and x.min() >= -1e-6 and x.max() <= 1 + 1e-6):
            raise DgmError(f"images must have values in [0, 1] (use Dataset.to_display), got [{x.min()}, {x.max()}]")
        return x

    @torch.no_grad()
    def _outputs(self, images01, batch_size: int, logits: bool) -> Tensor:
        x = self._check(images01)
        out = []
        for batch in x.split(batch_size):
            if self.fallback:
                out.append(self.network(batch))
            else:
                feats, logit = self.network.features_and_logits(batch)
                out.append(logit if logits else feats)
        return torch.cat(out) if out else torch.empty(0)

    def features(self, images01, batch_size: int = 500) -> Tensor:
        """Features (N, F) float32 of images (N, *shape) in [0, 1], in batches, without gradients."""
        return self._outputs(images01, batch_size, logits=False)

    def probs(self, images01, batch_size: int = 500) -> Tensor:
        """Class probabilities p(y | x) (N, 10) of the digit classifier; not for the fallback."""
        if self.fallback:
            raise DgmError(f"the {self.name} fallback feature space has no classes; class metrics need digit images")
        return self._outputs(images01, batch_size, logits=True).softmax(dim=1)


@cache
def _space(shape: tuple[int, ...], name: str) -> FeatureSpace:
    if name == FALLBACK:
        return FeatureSpace(name, shape, RandomConvFeatures(shape[0]), fallback=True)
    if DIGIT_SPACES.get(shape) != name:
        known = ", ".join(f"{n} for {s}" for s, n in DIGIT_SPACES.items())
        raise DgmError(f"no feature space '{name}' for images of shape {shape}; use {known}, or {FALLBACK}")
    return FeatureSpace(name, shape, load_digit_classifier(name), fallback=False)


def feature_space(info: DataInfo, name: str | None = None) -> FeatureSpace:
    """The feature space for data described by ``info`` (the dataset's *raw* DataInfo).

    By image shape: (1, 28, 28) -> "digits28", (1, 8, 8) -> "digits8", anything else ->
    the "random-conv" fallback; ``name`` forces a space. Vector data raises DgmError. Spaces
    are cached, so the networks load once per process.
    """
    if not info.is_image:
        raise DgmError(
            f"image feature metrics (FD, KID, precision/recall, density/coverage) need images (C, H, W), "
            f"got vectors of shape {tuple(info.shape)}; toy 2-D data has its own metrics (KL, mode coverage)"
        )
    shape = tuple(info.shape)
    return _space(shape, name or DIGIT_SPACES.get(shape, FALLBACK))


def classifier_score(probs: Tensor) -> float:
    """Classifier score (the Inception Score of Salimans et al. 2016 in a digit classifier):

        CS = exp( E_x KL(p(y|x) || p(y)) ),   p(y) = E_x p(y|x),

    from probabilities (N, K). It is 1 when all samples get the same class distribution and K
    when each sample is confidently classified and the classes are balanced.
    """
    p = torch.as_tensor(probs, dtype=torch.float64)
    p_y = p.mean(0, keepdim=True)  # (1, K)
    kl = (torch.xlogy(p, p) - torch.xlogy(p, p_y)).sum(1)  # (N,), with 0 log 0 = 0
    return float(kl.mean().exp())


def class_histogram(probs: Tensor) -> list[float]:
    """Fraction of samples per predicted class argmax_y p(y|x), from probabilities (N, K)."""
    p = torch.as_tensor(probs)
    counts = torch.bincount(p.argmax(1), minlength=p.shape[1])
    return (counts.double() / p.shape[0]).tolist()


def _entry(value, unit: str, what: str, n: int, **extra) -> dict:
    """One metrics.json entry."""
    return {"value": value, **extra, "unit": unit, "n": n, "what": what}


IMAGE_METRICS = ("fd", "kid", "prdc", "classes")


def image_sample_metrics(
    real_images01,
    fake_images01,
    space: FeatureSpace | None = None,
    kid_subsets: int = 100,
    kid_subset_size: int | None = None,
    seed: int = 0,
    include: Collection[str] = IMAGE_METRICS,
) -> dict:
    """Sample-quality metrics of generated images against real ones, as metrics.json entries.

    Both image sets are (N, C, H, W) in [0, 1] (``Dataset.to_display``). ``space`` defaults to
    the space for their shape. Returns ``{name: {"value", "unit", "what"[, "se", "n"]}}`` for the
    groups in ``include``:

    - "fd": "fd_digits" (or "fd_random_conv" in the fallback space);
    - "kid": "kid", the mean over ``kid_subsets`` subsets drawn with ``seed``, of
      ``kid_subset_size`` points each (by default half the smaller set, up to 1000, so that
      subsets differ), with "std" their standard deviation;
    - "prdc": "precision", "recall" (k = 3), "density", "coverage" (k = 5);
    - "classes" (digit spaces only): "classifier_score" and "class_histogram" of the samples.
    """
    if space is None:
        space = feature_space(DataInfo(tuple(torch.as_tensor(real_images01).shape[1:]), "continuous"))
    real, fake = space.features(real_images01), space.features(fake_images01)
    n_real, n = real.shape[0], fake.shape[0]
    where = f"{space.name} features ({real.shape[1]}-d) of {n} generated vs {n_real} real images"
    metrics = {}
    if "fd" in include:
        metrics[space.fd_label.lower().replace("-", "_")] = _entry(
            frechet_distance(real, fake),
            "squared feature units",
            f"{space.fd_label}: Fréchet distance of Gaussians fitted to {where}; not comparable to FID",
            n,
            space=space.name,
        )
    if "kid" in include:
        subset = kid_subset_size or max(2, min(1000, n_real // 2, n // 2))
        kid, kid_std = kernel_inception_distance(
            real, fake, kid_subsets, subset, generator=torch.Generator().manual_seed(seed)
        )
        metrics["kid"] = _entry(
            kid,
            "MMD^2",
            f"KID: unbiased MMD^2 with kernel (x.y/F + 1)^3, mean over {kid_subsets} random subsets of "
            f"{min(subset, n, n_real)} (std = spread over subsets), {where}",
            n,
            std=kid_std,
        )
    if "prdc" in include:
        pr, dc = precision_recall(real, fake, k=3), density_coverage(real, fake, k=5)
        metrics["precision"] = _entry(
            pr["precision"], "fraction", f"share of generated images in the real k=3 NN manifold, {where}", n
        )
        metrics["recall"] = _entry(
            pr["recall"], "fraction", f"share of real images in the generated k=3 NN manifold, {where}", n
        )
        metrics["density"] = _entry(
            dc["density"], "ratio", f"real k=5 NN balls per generated image / 5 (1 for matching sets), {where}", n
        )
        metrics["coverage"] = _entry(
            dc["coverage"], "fraction", f"share of real k=5 NN balls holding a generated image, {where}", n
        )
    if "classes" in include and not space.fallback:
        probs = space.probs(fake_images01)
        metrics["classifier_score"] = _entry(
            classifier_score(probs),
            "classes",
            f"exp(E KL(p(y|x) || p(y))) of generated images under the {space.name} classifier (1..10)",
            n,
        )
        metrics["class_histogram"] = _entry(
            class_histogram(probs),
            "fraction per class",
            f"fraction of generated images per class 0..9 predicted by the {space.name} classifier",
            n,
        )
    return metrics
