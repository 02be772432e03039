"""Likelihood metrics in the data's own units.

For a model q of transformed data y = T(x) with per-example log-det ``ladj`` = log|det dT/dx|,

    log p(x) = log q(y) + ladj,         NLL = -E[log p(x)]  (nats per example),
    bits/dim = NLL / (D ln 2).

For 8-bit images dequantized and scaled to [0, 1], ladj = -D ln 256, which gives the usual
bits/dim = (NLL_y + D ln 256) / (D ln 2). For binarized data the likelihood is that of the
binarized data (ladj = 0).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dgm.data.dataset import class_ranges
from dgm.models.base import GenerativeModel


def nats_to_bits_per_dim(nll: float | Tensor, dim: int) -> float | Tensor:
    """Convert a negative log-likelihood in nats per example to bits per dimension."""
    return nll / (dim * math.log(2.0))


@torch.no_grad()
def per_example_log_prob(
    model: GenerativeModel, x: Tensor, cond: Tensor | None = None, batch_size: int = 500, kind: str = "log_prob", k=None
) -> Tensor:
    """Per-example log-likelihood of model-space ``x`` (float64 on the CPU), in batches on the
    model's device: ``kind="log_prob"`` is the exact log q(x) (or, for bound models, the
    importance-weighted estimate with ``k`` samples); ``kind="elbo"`` is the evidence lower bound."""
    device = model.device
    extra = {} if k is None else {"k": k}
    fn = model.elbo if kind == "elbo" else model.log_prob
    out = []
    for i in range(0, x.shape[0], batch_size):
        c = None if cond is None else cond[i : i + batch_size].to(device)
        out.append(fn(x[i : i + batch_size].to(device), cond=c, **extra).double().cpu())
    return torch.cat(out)


def data_log_likelihood(
    model: GenerativeModel,
    dataset,
    x_raw: Tensor,
    cond: Tensor | None = None,
    seed: int = 0,
    kind: str = "log_prob",
    k=None,
) -> Tensor:
    """log p(x) per example of RAW data ``x_raw`` in the data's own units: the model's
    log-likelihood of the transformed data plus the transforms' log-det (noise of stochastic
    transforms from a generator seeded with ``seed``). ``kind`` and ``k`` as in
    :func:`per_example_log_prob`; conditional models need ``cond``."""
    was_training = model.training
    model.eval()
    y, ladj = dataset.apply_transforms(x_raw, torch.Generator().manual_seed(seed))
    log_p = per_example_log_prob(model, y, cond if model.conditional else None, kind=kind, k=k) + ladj.double()
    model.train(was_training)
    return log_p


def nll_entry(log_p: Tensor, what: str) -> dict:
    """A metrics entry for the mean of ``-log_p`` with its standard error."""
    nll = -log_p
    n = nll.numel()
    se = float(nll.std() / math.sqrt(n)) if n > 1 else float("nan")
    return {"value": float(nll.mean()), "se": se, "unit": "nats/example", "n": n, "what": what}


def bits_entry(entry: dict, dim: int, what: str) -> dict:
    """The bits/dim entry of an NLL entry in nats/example."""
    return {
        "value": float(nats_to_bits_per_dim(entry["value"], dim)),
        "se": float(nats_to_bits_per_dim(entry["se"], dim)),
        "unit": "bits/dim",
        "n": entry["n"],
        "what": what,
    }


def likelihood_metrics(model: GenerativeModel, dataset, split: str = "test", seed: int = 0, k: int = 100) -> dict:
    """Likelihood of the ``split`` in data units (transform log-dets included).

    - Exact models: ``nll`` (nats/example, with standard error) and ``bits_per_dim``.
    - Bound models: ``nll_elbo`` = -ELBO, an upper bound on the NLL, and, for models that are
      ``importance_weighted``, ``nll_iw``, the importance-weighted bound with ``k`` samples
      (Burda et al. 2016), tighter and approaching the NLL as k grows; ``bits_per_dim`` is
      computed from the tightest of them and is a bound too.
    - Models without a density: ``{}``.
    """
    if model.density not in ("exact", "bound"):
        return {}
    data = dataset.split(split)
    dim = dataset.info.dim
    where = f"{split} split of {dataset.spec}" + (f" ({', '.join(dataset.transforms)})" if dataset.transforms else "")
    if dataset.classes is not None:
        where += f", classes {class_ranges(dataset.classes)}"
    if model.density == "exact":
        nll = nll_entry(
            data_log_likelihood(model, dataset, data.x, data.y, seed), f"negative log-likelihood on the {where}"
        )
        return {"nll": nll, "bits_per_dim": bits_entry(nll, dim, f"NLL / (D ln 2) with D = {dim}")}
    elbo = data_log_likelihood(model, dataset, data.x, data.y, seed, kind="elbo")
    note = model.bound_note()
    what = f"negative ELBO, an upper bound on the NLL, {where}" + (f"; {note}" if note else "")
    out = {"nll_elbo": nll_entry(elbo, what)}
    if not model.importance_weighted:
        out["bits_per_dim"] = bits_entry(out["nll_elbo"], dim, f"upper bound: nll_elbo / (D ln 2) with D = {dim}")
        return out
    iw = data_log_likelihood(model, dataset, data.x, data.y, seed, k=k)
    out["nll_iw"] = {**nll_entry(iw, f"importance-weighted bound on the NLL with k = {k} samples, {where}"), "k": k}
    out["bits_per_dim"] = bits_entry(out["nll_iw"], dim, f"upper bound: nll_iw / (D ln 2) with D = {dim}, k = {k}")
    return out
