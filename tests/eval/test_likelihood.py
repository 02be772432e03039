"""Likelihoods are reported in the data's own units, with every transform's log-det counted."""

from __future__ import annotations

import math

import torch

import dgm
from dgm.eval.likelihood import likelihood_metrics, nats_to_bits_per_dim
from dgm.models.base import GenerativeModel, ModelConfig


class UniformBox(GenerativeModel):
    """Uniform density on [low, high]^D: log q(y) = -D log(high - low). Known in closed form."""

    density = "exact"
    supports = frozenset({"continuous"})

    def __init__(self, config: ModelConfig, low: float, high: float):
        super().__init__(config)
        self.low, self.high = low, high

    def log_prob(self, x, cond=None):
        inside = ((x >= self.low) & (x <= self.high)).flatten(1).all(1)
        value = -self.config.data.dim * math.log(self.high - self.low)
        return torch.where(inside, torch.full((x.shape[0],), value), torch.full((x.shape[0],), -math.inf))


def test_uniform_density_on_dequantized_digits_costs_log2_levels_bits_per_dim():
    # digits have 17 grey levels. A uniform density on the dequantized cube [0, 17)^64 gives every
    # image probability 17^-64: NLL = 64 ln 17 nats, bits/dim = log2 17, in any chain of
    # invertible transforms after dequantization.
    expected_bpd = math.log2(17)
    for transforms, (low, high) in (
        (["dequantize"], (0.0, 17.0)),
        (["dequantize", "scale"], (0.0, 1.0)),
        (["dequantize", "scale:-1,1"], (-1.0, 1.0)),
    ):
        ds = dgm.load_dataset("digits", transforms=transforms)
        model = UniformBox(ModelConfig(ds.info), low, high)
        m = likelihood_metrics(model, ds, "test")
        assert math.isclose(m["bits_per_dim"]["value"], expected_bpd, rel_tol=1e-6), transforms
        assert math.isclose(m["nll"]["value"], 64 * math.log(17), rel_tol=1e-6)
        assert m["nll"]["n"] == 447


def test_fair_coin_on_binarized_digits_is_one_bit_per_dim():
    ds = dgm.load_dataset("digits", transforms=["binarize"])
    model = dgm.build("independent", data=ds)
    for p in model.parameters():
        torch.nn.init.zeros_(p)  # logits 0: every pixel is a fair coin
    m = likelihood_metrics(model, ds, "test")
    assert math.isclose(m["bits_per_dim"]["value"], 1.0, rel_tol=1e-6)
    assert math.isclose(m["nll"]["value"], 64 * math.log(2), rel_tol=1e-6)
    assert m["nll"]["se"] < 1e-6  # every image has the same probability


def test_bits_per_dim_conversion():
    assert math.isclose(nats_to_bits_per_dim(784 * math.log(2), 784), 1.0)


class GappedBox(UniformBox):
    """A bound model over the uniform box: ELBO = log q - gap, IWAE_k = log q - gap / k."""

    density = "bound"
    importance_weighted = True
    gap = 3.0

    def elbo(self, x, cond=None):
        return UniformBox.log_prob(self, x) - self.gap

    def log_prob(self, x, cond=None, k=1):
        return UniformBox.log_prob(self, x) - self.gap / k


def test_bound_models_report_the_elbo_and_the_importance_weighted_bound_with_its_k():
    ds = dgm.load_dataset("digits", transforms=["dequantize", "scale"])
    exact = 64 * math.log(17)
    m = likelihood_metrics(GappedBox(ModelConfig(ds.info), 0.0, 1.0), ds, "test", k=50)
    assert "nll" not in m  # a bound is never reported as the NLL
    assert math.isclose(m["nll_elbo"]["value"], exact + 3.0, rel_tol=1e-6)
    assert math.isclose(m["nll_iw"]["value"], exact + 3.0 / 50, rel_tol=1e-6)
    assert m["nll_iw"]["k"] == 50 and "k = 50" in m["nll_iw"]["what"]
    assert "bound" in m["nll_elbo"]["what"] and "bound" in m["bits_per_dim"]["what"]
    assert math.isclose(m["bits_per_dim"]["value"], m["nll_iw"]["value"] / (64 * math.log(2)))


def test_a_bound_without_importance_weights_reports_the_elbo_only():
    ds = dgm.load_dataset("digits", transforms=["dequantize", "scale"])
    model = GappedBox(ModelConfig(ds.info), 0.0, 1.0)
    model.importance_weighted = False
    m = likelihood_metrics(model, ds, "test")
    assert set(m) == {"nll_elbo", "bits_per_dim"}
    assert math.isclose(m["bits_per_dim"]["value"], m["nll_elbo"]["value"] / (64 * math.log(2)))


def test_models_without_a_density_get_no_likelihood():
    ds = dgm.load_dataset("toy2d:gmm8")
    model = UniformBox(ModelConfig(ds.info), -1.0, 1.0)
    model.density = "none"
    assert likelihood_metrics(model, ds) == {}
