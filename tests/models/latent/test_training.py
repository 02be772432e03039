"""Tiny end-to-end trainings: the latent models find structure the independent baseline cannot."""

from __future__ import annotations

import math

import torch

import dgm
from dgm.models.base import Batch

INFO = dgm.DataInfo((16,), "binary", 2)
FLIP = 0.05


def two_prototypes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bits that are one of two complementary 16-bit patterns with 5% of the bits flipped."""
    g = torch.Generator().manual_seed(seed)
    proto = torch.tensor([1.0, 0.0] * 8)
    label = torch.randint(0, 2, (n,), generator=g)
    x = torch.where(label[:, None] == 1, proto, 1 - proto)
    flips = (torch.rand(n, 16, generator=g) < FLIP).float()
    return (x + flips * (1 - 2 * x)), label


def fit(model, x, steps=400, lr=1e-2):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for i in range(steps):
        batch = x[(i * 64) % len(x) :][:64]
        opt.zero_grad()
        model.loss(Batch(batch))["loss"].backward()
        opt.step()
    return model.eval()


def test_vae_bound_beats_the_independent_baseline_and_approaches_the_truth():
    x, _ = two_prototypes(2048, seed=0)
    test, _ = two_prototypes(1000, seed=1)
    vae = fit(dgm.build("vae", data=INFO, latent_dim=1, hidden=(32,)), x)
    independent = fit(dgm.build("independent", data=INFO), x)
    with torch.no_grad():
        nll_iw = -vae.log_prob(test, k=100).mean().item()
        nll_elbo = -vae.elbo(test).mean().item()
        nll_independent = -independent.log_prob(test).mean().item()
    truth = math.log(2) + 16 * -(FLIP * math.log(FLIP) + (1 - FLIP) * math.log(1 - FLIP))  # 3.88 nats
    assert nll_independent > 16 * math.log(2) - 0.2  # every marginal is a fair coin
    assert nll_iw <= nll_elbo + 0.05
    assert nll_iw < truth + 0.5 < nll_independent - 5


def test_ae_codes_separate_the_two_prototypes():
    x, label = two_prototypes(2048, seed=2)
    ae = fit(dgm.build("ae", data=INFO, latent_dim=1, hidden=(32,)), x, steps=200)
    with torch.no_grad():
        z = ae.encode(x)[:, 0]
    threshold = z.median()
    accuracy = ((z > threshold).long() == label).float().mean().item()
    assert max(accuracy, 1 - accuracy) > 0.95
