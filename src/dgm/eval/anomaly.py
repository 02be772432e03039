"""Anomaly (out-of-distribution) detection with a generative model's scores.

A model trained on in-distribution data scores each example, higher = more anomalous:

- exact density:  NLL(x) = -[log q(T(x)) + ladj(x)], nats in the data's own units (T the
                  dataset's transforms, ladj their log-det);
- bound:          -[ELBO(T(x)) + ladj(x)], an upper bound on the NLL;
- encoder only:   the squared reconstruction error ||decode(encode(T(x))) - T(x)||^2 in model space.

The score's ability to tell the test split (negatives) from an OOD set (positives) is measured
by AUROC = P(s_out > s_in) + P(s_out = s_in) / 2 and by the average precision (AUPR).

Likelihood is a poor OOD score on its own: models give simpler images (blank, a digit "1",
SVHN for a CIFAR model) HIGHER likelihood than their own test data, AUROC < 0.5 (Nalisnick et
al. 2019, "Do deep generative models know what they don't know?"). The metrics therefore also
report the mean NLL of each set, and two remedies:

- typicality (Nalisnick et al. 2019, "Detecting out-of-distribution inputs to deep generative
  models using typicality"): s(x) = |NLL(x) - H|, with the entropy estimate H the mean NLL on the
  VALIDATION split (not the train split, whose NLL is biased low by overfitting); the paper's
  test uses batches, here M = 1 example;
- likelihood ratio against a background model (Ren et al. 2019; Serrà et al. 2020 use a
  compressor's code length instead): s(x) = NLL(x) - NLL_bg(x), when a ``background`` model of
  the same data is given, e.g. the ``independent`` baseline, whose NLL mostly measures how many
  pixels are lit, i.e. the image's complexity.

>>> ds = load_dataset("mnist5k", transforms=["binarize"], classes="0,2-9")
>>> metrics = anomaly_metrics(model, ds, n=500)   # auroc_noise, ..., auroc_held_out_classes
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from dgm.data.dataset import class_ranges
from dgm.errors import DataError, DgmError
from dgm.eval.likelihood import data_log_likelihood
from dgm.eval.representation import latent_means
from dgm.models.base import GenerativeModel

OOD_SETS = ("noise", "inverted", "flipped", "mirrored", "held_out_classes")
IMAGE_SETS = ("flipped", "mirrored")  # need (C, H, W) examples


# ----- scores -------------------------------------------------------------------------------


def score_kind(model: GenerativeModel) -> str:
    """Name of the anomaly score of ``model``: "nll", "nll_elbo" (-ELBO, as in likelihood_metrics) or
    "recon_error"."""
    if model.density == "exact":
        return "nll"
    if model.density == "bound":
        return "nll_elbo"
    if model.has_encoder:
        return "recon_error"
    raise DgmError(
        f"model '{model.name or type(model).__name__}' has neither a density nor an encoder, so it gives "
        "no anomaly score; use a model with a likelihood, a bound or encode/decode"
    )


def _log_likelihood(model: GenerativeModel, dataset, x_raw: Tensor, kind: str, seed: int) -> Tensor:
    """log p(x) (or the ELBO) in data units; a conditional model is marginalised over the classes,
    log p(x) = logsumexp_c log p(x | c) - log C, a uniform prior over the C trained classes."""
    if not model.conditional:
        return data_log_likelihood(model, dataset, x_raw, seed=seed, kind=kind)
    classes = dataset.classes or range(dataset.info.num_classes)
    per_class = [
        data_log_likelihood(model, dataset, x_raw, torch.full((len(x_raw),), c), seed=seed, kind=kind) for c in classes
    ]
    return torch.logsumexp(torch.stack(per_class), dim=0) - math.log(len(per_class))


@torch.no_grad()
def anomaly_scores(model: GenerativeModel, dataset, x_raw: Tensor, seed: int = 0, batch_size: int = 500) -> Tensor:
    """Anomaly score per example of RAW data ``x_raw`` (N, *raw shape): float64 (N,), higher = more
    anomalous. NLL in data units (exact models), -ELBO (bound models) or squared reconstruction
    error in model space (encoder models without a density); see :func:`score_kind`.
    Stochastic transforms (dequantize, binarize:stochastic) draw from Generator().manual_seed(seed).
    """
    kind = score_kind(model)
    if kind != "recon_error":
        return -_log_likelihood(model, dataset, x_raw, "log_prob" if kind == "nll" else "elbo", seed)
    y, _ = dataset.apply_transforms(x_raw, torch.Generator().manual_seed(seed))
    z = latent_means(model, y, batch_size)  # (N, K)
    was_training = model.training
    model.eval()
    errors = []
    for i in range(0, y.shape[0], batch_size):
        y_hat = model.decode(z[i : i + batch_size].to(model.device)).cpu()
        errors.append((y_hat.reshape(y_hat.shape[0], -1) - y[i : i + batch_size].flatten(1)).pow(2).sum(1))
    model.train(was_training)
    return torch.cat(errors).double()


# ----- out-of-distribution sets ---------------------------------------------------------------


def ood_sets(dataset, seed: int = 0, names: Sequence[str] | None = None) -> dict[str, Tensor]:
    """Raw-space OOD sets built from the test split x (N, *shape), each of N examples:

    - ``noise``: uniform random values, the integers 0..levels-1 for discrete data, else uniform
      on [min, max] of the raw train split;
    - ``inverted``: levels - 1 - x (discrete), min + max - x (continuous): ink becomes paper;
    - ``flipped``: upside down (reversed height axis); 0, 1 and 8 look alike this way up, so it
      is a hard set; ``mirrored``: left-right (reversed width axis); images only;
    - ``held_out_classes``: when ``dataset`` was loaded with ``classes=``, the test images of the
      excluded classes (from the source reloaded without the filter); their own number of examples.

    ``names`` picks sets (default: every set that applies); an image set asked of vector data
    raises DataError. Random draws use Generator().manual_seed(seed).
    """
    info, x = dataset.raw_info, dataset.split("test").x
    if names is None:
        names = [n for n in OOD_SETS if (info.is_image or n not in IMAGE_SETS)]
        names = [n for n in names if n != "held_out_classes" or _excluded(dataset)]
    out = {}
    for name in names:
        if name not in OOD_SETS:
            raise DataError(f"unknown OOD set '{name}'; known sets: {', '.join(OOD_SETS)}")
        if name in IMAGE_SETS and not info.is_image:
            raise DataError(f"the OOD set '{name}' needs images (C, H, W); '{dataset.spec}' has shape {info.shape}")
        out[name] = _ood_set(dataset, name, x, seed)
    return out


def _ood_set(dataset, name: str, x: Tensor, seed: int) -> Tensor:
    info, gen = dataset.raw_info, torch.Generator().manual_seed(seed)
    if info.levels is not None:
        low, high = 0.0, float(info.levels - 1)
    else:
        train = dataset.split("train").x
        low, high = float(train.min()), float(train.max())
    if name == "noise":
        if info.levels is not None:
            return torch.randint(0, info.levels, x.shape, generator=gen).to(x.dtype)
        return low + (high - low) * torch.rand(x.shape, generator=gen)
    if name == "inverted":
        return low + high - x
    if name == "flipped":
        return x.flip(-2)  # (N, C, H, W): reverse H
    if name == "mirrored":
        return x.flip(-1)  # reverse W
    excluded = _excluded(dataset)
    if not excluded:
        raise DataError(
            f"'{dataset.spec}' was loaded with every class, so no class is held out; load it with classes=..."
        )
    from dgm.data import load_dataset

    full = load_dataset(dataset.spec).split("test")
    return full.x[torch.isin(full.y, torch.tensor(excluded))]


def _excluded(dataset) -> list[int]:
    """Classes left out by the dataset's ``classes=`` filter ([] without a filter)."""
    if dataset.classes is None:
        return []
    return [c for c in range(dataset.raw_info.num_classes) if c not in dataset.classes]


# ----- metrics ------------------------------------------------------------------------------


def _ranks(in_scores: Tensor, out_scores: Tensor) -> tuple[Tensor, Tensor]:
    """Labels (0 = in, 1 = OOD) and dense ranks of the pooled scores: same order and ties, but
    finite, so +-inf scores (zero density) are fine."""
    scores = torch.cat([torch.as_tensor(in_scores), torch.as_tensor(out_scores)]).double().flatten()
    if torch.isnan(scores).any():
        raise DgmError("anomaly scores contain NaN; the model gives no score for some examples")
    if len(in_scores) == 0 or len(out_scores) == 0:
        raise DgmError("AUROC / AUPR need at least one in-distribution and one OOD score")
    labels = torch.cat([torch.zeros(len(in_scores)), torch.ones(len(out_scores))])
    return labels.numpy(), torch.unique(scores, return_inverse=True)[1].numpy()


def auroc(in_scores: Tensor, out_scores: Tensor) -> float:
    """Area under the ROC curve with OOD as the positive class (higher score = more anomalous):
    AUROC = P(s_out > s_in) + P(s_out = s_in) / 2 (the Mann-Whitney U statistic / (n_in n_out)).
    1 = perfect detection, 0.5 = chance, 0 = perfectly reversed."""
    from sklearn.metrics import roc_auc_score

    labels, ranks = _ranks(in_scores, out_scores)
    return float(roc_auc_score(labels, ranks))


def aupr(in_scores: Tensor, out_scores: Tensor) -> float:
    """Area under the precision-recall curve with OOD as the positive class, as average
    precision AP = sum_k (R_k - R_{k-1}) P_k over the score thresholds (sklearn); chance level is
    the OOD fraction n_out / (n_in + n_out)."""
    from sklearn.metrics import average_precision_score

    labels, ranks = _ranks(in_scores, out_scores)
    return float(average_precision_score(labels, ranks))


def _mean_entry(scores: Tensor, kind: str, what: str) -> dict:
    n = scores.numel()
    unit = "squared error" if kind == "recon_error" else "nats/example"
    se = float(scores.std() / math.sqrt(n)) if n > 1 else float("nan")
    return {"value": float(scores.mean()), "se": se, "unit": unit, "n": n, "what": what}


def _auc_entries(tag: str, name: str, s_in: Tensor, s_out: Tensor, what: str) -> dict:
    n = len(s_in) + len(s_out)
    return {
        f"auroc{tag}_{name}": {"value": auroc(s_in, s_out), "unit": "probability", "n": n, "what": f"AUROC {what}"},
        f"aupr{tag}_{name}": {"value": aupr(s_in, s_out), "unit": "fraction", "n": n, "what": f"AUPR {what}"},
    }


def anomaly_metrics(
    model: GenerativeModel,
    dataset,
    seed: int = 0,
    n: int | None = None,
    sets: Mapping[str, Tensor] | None = None,
    background: GenerativeModel | None = None,
) -> dict:
    """OOD detection of each set of :func:`ood_sets` (or the raw ``sets`` given) against the
    test split, in metrics.json format. ``n`` caps the examples per set (the first n).

    Entries, with ``<kind>`` from :func:`score_kind` and ``<set>`` each OOD set:
    ``<kind>_test`` and ``<kind>_<set>`` (mean score: a lower OOD NLL than test NLL is the
    failure case), ``auroc_<set>``, ``aupr_<set>``; for density models
    ``auroc_typicality_<set>`` / ``aupr_typicality_<set>`` (|score - mean val score|); with a
    ``background`` density model ``auroc_ratio_<set>`` / ``aupr_ratio_<set>`` (score - background score).
    """
    kind = score_kind(model)
    sets = ood_sets(dataset, seed) if sets is None else sets
    x_in = dataset.split("test").x[:n]
    s_in = anomaly_scores(model, dataset, x_in, seed)
    metrics = {f"{kind}_test": _mean_entry(s_in, kind, f"mean {kind} of the test split of {dataset.spec}")}
    density = kind != "recon_error"
    if density:
        entropy = float(anomaly_scores(model, dataset, dataset.split("val").x[:n], seed).mean())
    if background is not None:
        if score_kind(background) == "recon_error":
            raise DgmError("the background model of the likelihood ratio needs a density; try 'independent'")
        bg_in = anomaly_scores(background, dataset, x_in, seed)
    for name, x_out in sets.items():
        x_out = x_out[:n]
        s_out = anomaly_scores(model, dataset, x_out, seed)
        label = (
            f"test images of the held-out classes {class_ranges(_excluded(dataset))}"
            if name == "held_out_classes"
            else name
        )
        metrics[f"{kind}_{name}"] = _mean_entry(s_out, kind, f"mean {kind} of the OOD set '{label}'")
        metrics.update(_auc_entries("", name, s_in, s_out, f"of {kind}: test split vs OOD set '{name}'"))
        if density:
            what = f"of the typicality score |{kind} - {entropy:.2f}| (mean val {kind}): test vs '{name}'"
            metrics.update(_auc_entries("_typicality", name, (s_in - entropy).abs(), (s_out - entropy).abs(), what))
        if background is not None:
            ratio_out = s_out - anomaly_scores(background, dataset, x_out, seed)
            what = f"of {kind} - background {score_kind(background)}: test vs '{name}'"
            metrics.update(_auc_entries("_ratio", name, s_in - bg_in, ratio_out, what))
    return metrics
