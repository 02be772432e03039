"""The evaluation suite: which metrics apply to a model on its data, and computing them.

Metrics come in groups, named as ``dgm eval --metrics`` takes them. Every group that applies is
computed by default; asking for one that does not apply is an error that says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch

from dgm.data.targets import GaussianMixture
from dgm.errors import ConfigError
from dgm.eval.features import IMAGE_METRICS, feature_space
from dgm.models.base import GenerativeModel

GROUPS: dict[str, str] = {
    "nll": "test NLL and bits/dim (exact models), or the negative ELBO and importance-weighted bound",
    "fd": "Fréchet distance of samples to the test split in a shipped digit classifier's features (FD-digits)",
    "kid": "kernel distance (unbiased MMD², cubic polynomial kernel) in the same features",
    "prdc": "precision and recall (k=3), density and coverage (k=5) in the same features",
    "classes": "classifier score and predicted-class histogram of samples (digit data)",
    "kl": "toy 2-D: KL(p||q) = NLL - H(p) against the analytic target, on fresh target samples, and JS(p||q) "
    "(exact models)",
    "mmd": "toy 2-D: MMD² with an RBF kernel between model samples and target samples",
    "modes": "toy 2-D mixtures: modes covered and fraction of high-quality samples",
    "anomaly": "AUROC/AUPR of the model's anomaly score, test split vs out-of-distribution sets",
    "probe": "linear-probe (logistic regression) accuracy on the model's latents",
    "speed": "sampling time per example",
}
TOY_GROUPS = ("kl", "mmd", "modes")
MIN_REAL = 2  # test images the image metrics need (a covariance, nearest neighbours)
SAMPLE_GROUPS = (*IMAGE_METRICS, "mmd", "modes", "speed")


def why_not(
    group: str, model: GenerativeModel | type[GenerativeModel], dataset, features: str | None = None
) -> str | None:
    """Why metric group ``group`` does not apply to ``model`` on ``dataset`` (image features in
    the space named ``features``, default chosen by shape), or None if it does. Only the
    declared capabilities are read, so ``model`` may also be a model class."""
    info = dataset.raw_info
    has_density = model.density in ("exact", "bound")
    target = dataset.target
    if group == "nll":
        return None if has_density else f"model '{model.name}' has no likelihood (density '{model.density}')"
    if group in IMAGE_METRICS:
        if not info.is_image:
            return f"{dataset.spec} is not image data"
        if group == "classes":
            if feature_space(info, features).fallback:
                return f"the {feature_space(info, features).name} feature space has no classifier"
            return None
        if dataset.split("test").n < MIN_REAL:  # statistics of the real images' features
            return f"the test split of {dataset.spec} has {dataset.split('test').n} images; {group} needs {MIN_REAL}"
        return None
    if group in TOY_GROUPS:
        if target is None:
            return f"{dataset.spec} has no analytic target (toy2d data only)"
        if group == "kl" and not (has_density and target.has_density):
            return "KL needs a model with a density and a target with one"
        if group == "modes" and not isinstance(target, GaussianMixture):
            return f"{dataset.spec} is not a Gaussian mixture (gmm8, grid25)"
        return None
    if group == "anomaly":
        if not info.is_image:
            return f"{dataset.spec} is not image data"
        return None if has_density or model.has_encoder else f"model '{model.name}' gives no anomaly score"
    if group == "probe":
        if not model.has_encoder:
            return f"model '{model.name}' has no encoder"
        return None if info.num_classes else f"{dataset.spec} has no labels"
    if group == "speed":
        return None
    raise ConfigError(f"unknown metric '{group}'; choose from {', '.join(GROUPS)}")


def quick_groups(model: GenerativeModel, dataset) -> list[str]:
    """The groups cheap enough to compute at the end of every training run: NLL and toy-2D KL;
    for a model without a density (a GAN, whose samples cost one network pass) the sample
    metrics that apply instead: FD-digits and the class histogram, or toy-2D MMD and modes."""
    groups = ("nll", "kl") if model.density != "none" else ("fd", "classes", "mmd", "modes")
    return [g for g in groups if why_not(g, model, dataset) is None]


def parse_metrics(text: str | Iterable[str] | None) -> list[str] | None:
    """``"nll,fd"`` -> ["nll", "fd"]; None or "all" -> None (every group that applies)."""
    if text is None:
        return None
    names = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if names in ([], ["all"]):
        return None
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise ConfigError(f"unknown metric '{unknown[0]}'; choose from {', '.join(GROUPS)} (or all)")
    return names


def choose_groups(
    model: GenerativeModel, dataset, metrics: Iterable[str] | None, features: str | None = None
) -> list[str]:
    """The groups to compute: the ones asked for (each must apply), or every one that applies."""
    if metrics is None:
        return [g for g in GROUPS if why_not(g, model, dataset, features) is None]
    chosen = list(dict.fromkeys(metrics))
    for group in chosen:
        reason = why_not(group, model, dataset, features)
        if reason:
            raise ConfigError(f"metric '{group}' does not apply: {reason}")
    return chosen


def eval_labels(model: GenerativeModel, dataset, split: str, n: int) -> torch.Tensor | None:
    """Class labels for conditional samples: ``n`` of the split's labels, evenly spaced over it
    (so the classes keep their proportions in a split sorted by class), cycled when ``n`` is
    larger than the split."""
    if not model.conditional:
        return None
    y = dataset.split(split).y
    if n <= len(y):
        return y[torch.arange(n) * len(y) // n]
    return y[torch.arange(n) % len(y)]


def evaluate(
    model: GenerativeModel,
    dataset,
    metrics: Iterable[str] | None = None,
    n: int | None = None,
    split: str = "test",
    seed: int = 0,
    k: int = 100,
    features: str | None = None,
    log: Callable[[str], None] | None = None,
    sample_options: dict | None = None,
) -> dict:
    """Compute metric groups (``metrics``, default every one that applies; see :data:`GROUPS`).

    ``n`` is the number of model samples for sample-based metrics (default: the size of the
    split for images, 2 000 for toy data); ``seed`` seeds samples and noise; ``k`` is the number
    of importance samples of bound models; ``features`` names the image feature space
    ("digits28", "digits8" or "random-conv"; default: chosen by image shape);
    ``sample_options`` go to the model's ``sample`` (a diffusion sampler and its steps, say) and
    are named in the sample metrics' descriptions. Returns metrics.json entries.
    """
    groups = choose_groups(model, dataset, metrics, features)
    log = log or (lambda message: None)
    out: dict = {}
    if "nll" in groups:
        from dgm.eval.likelihood import likelihood_metrics

        log("likelihood")
        out.update(likelihood_metrics(model, dataset, split=split, seed=seed, k=k))

    samples = None
    if any(g in SAMPLE_GROUPS for g in groups):
        from dgm.sampling import draw_samples

        if n is None:
            n = dataset.split(split).n if dataset.raw_info.is_image else 2000
        log(f"drawing {n} samples")
        start = time.perf_counter()
        samples = draw_samples(model, n, seed, cond=eval_labels(model, dataset, split, n), options=sample_options)
        seconds = time.perf_counter() - start
        if "speed" in groups:
            out["sample_time"] = {
                "value": seconds / n,
                "unit": "s/example",
                "n": n,
                "what": f"wall-clock sampling time per example, {n} samples in batches of up to 1000 on {model.device}"
                + sampled_with(sample_options),
            }

    if any(g in IMAGE_METRICS for g in groups):
        from dgm.eval.features import image_sample_metrics

        space = feature_space(dataset.raw_info, features)
        log(f"sample quality in the {space.name} feature space")
        real = dataset.to_display(dataset.transformed(split, seed=seed)[0])
        asked = [g for g in groups if g in IMAGE_METRICS]
        found = image_sample_metrics(real, dataset.to_display(samples), space, include=asked)
        out.update({key: described(entry, sampled_with(sample_options)) for key, entry in found.items()})

    if any(g in TOY_GROUPS for g in groups):
        from dgm.eval.toy2d import toy2d_metrics

        log("toy 2-D metrics")
        found = toy2d_metrics(model, dataset, seed=seed, samples=samples, kl="kl" in groups)
        out.update({key: entry for key, entry in found.items() if group_of(key) in groups})

    if "anomaly" in groups:
        from dgm.eval.anomaly import anomaly_metrics

        log("anomaly detection")
        out.update(anomaly_metrics(model, dataset, seed=seed))

    if "probe" in groups:
        from dgm.eval.representation import linear_probe

        log("linear probe")
        out.update(linear_probe(model, dataset, seed=seed))
    return out


def sampled_with(options: dict | None) -> str:
    """ ", sampled with sampler ddim, steps 20" for the given sampling options ("" for none)."""
    given = [f"{key} {value}" for key, value in (options or {}).items() if value is not None]
    return f", sampled with {', '.join(given)}" if given else ""


def described(entry, extra: str):
    """A metrics entry with ``extra`` appended to its description (entries without one as they are)."""
    if extra and isinstance(entry, dict) and "what" in entry:
        return {**entry, "what": entry["what"] + extra}
    return entry


def group_of(key: str) -> str | None:
    """The metric group a metrics.json key belongs to (None for training records such as
    ``train_time``)."""
    if key in ("nll", "nll_elbo", "nll_iw", "bits_per_dim"):
        return "nll"
    if key.startswith("fd_"):
        return "fd"
    if key.startswith("kid"):
        return "kid"
    if key in ("precision", "recall", "density", "coverage"):
        return "prdc"
    if key in ("classifier_score", "class_histogram"):
        return "classes"
    if key.startswith("kl") or key == "js":
        return "kl"
    if key.startswith("mmd"):
        return "mmd"
    if key in ("modes_covered", "hq_fraction"):
        return "modes"
    if key.startswith(("auroc_", "aupr_")) or key.startswith(("nll_", "recon_error_")):
        return "anomaly"
    if key.startswith("probe_"):
        return "probe"
    if key == "sample_time":
        return "speed"
    return None
