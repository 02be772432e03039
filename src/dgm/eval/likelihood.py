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

from dgm.models.base import GenerativeModel


def nats_to_bits_per_dim(nll: float | Tensor, dim: int) -> float | Tensor:
    """Convert a negative log-likelihood in nats per example to bits per dimension."""
    return nll / (dim * math.log(2.0))


@torch.no_grad()
def per_example_log_prob(
    model: GenerativeModel, x: Tensor, cond: Tensor | None = None, batch_size: int = 500
) -> Tensor:
    """log q(x) for each row of ``x`` (exact models), computed in batches on the model's device."""
    device = model.device
    out = []
    for i in range(0, x.shape[0], batch_size):
        c = None if cond is None else cond[i : i + batch_size].to(device)
        out.append(model.log_prob(x[i : i + batch_size].to(device), cond=c).double().cpu())
    return torch.cat(out)


def likelihood_metrics(model: GenerativeModel, dataset, split: str = "test", seed: int = 0) -> dict:
    """Test NLL (nats/example, with standard error) and bits/dim for a model with an exact density.

    Returns ``{}`` for models without an exact density (bounds are reported by their own metric).
    """
    if model.density != "exact":
        return {}
    was_training = model.training
    model.eval()
    x, ladj = dataset.transformed(split, seed=seed)
    labels = dataset.split(split).y
    cond = labels if model.conditional else None
    log_p = per_example_log_prob(model, x, cond) + ladj.double()
    model.train(was_training)
    nll = -log_p
    n, dim = nll.numel(), dataset.info.dim
    se = float(nll.std() / math.sqrt(n)) if n > 1 else float("nan")
    where = f"{split} split of {dataset.spec}" + (f" ({', '.join(dataset.transforms)})" if dataset.transforms else "")
    return {
        "nll": {
            "value": float(nll.mean()),
            "se": se,
            "unit": "nats/example",
            "n": n,
            "what": f"negative log-likelihood on the {where}",
        },
        "bits_per_dim": {
            "value": float(nats_to_bits_per_dim(nll.mean(), dim)),
            "se": float(nats_to_bits_per_dim(se, dim)),
            "unit": "bits/dim",
            "n": n,
            "what": f"NLL / (D ln 2) with D = {dim}",
        },
    }
