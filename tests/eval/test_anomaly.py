"""Anomaly detection: AUROC/AUPR by hand, OOD sets, and the likelihood failure case on digits."""

from __future__ import annotations

import math

import pytest
import torch

import dgm
from dgm.errors import DataError, DgmError
from dgm.eval.anomaly import anomaly_metrics, anomaly_scores, aupr, auroc, ood_sets
from dgm.eval.likelihood import data_log_likelihood
from dgm.models.base import GenerativeModel, ModelConfig
from tests.conftest import fit_independent
from tests.eval.test_representation import PCACode

T = torch.tensor


class GapBound(GenerativeModel):
    """A bound model whose ELBO is log p(x) - 1 under a wrapped exact model."""

    density = "bound"

    def __init__(self, inner: GenerativeModel):
        super().__init__(inner.config)
        self.inner = inner

    def elbo(self, x, cond=None):
        return self.inner.log_prob(x, cond) - 1.0

    def log_prob(self, x, cond=None, k=None):
        return self.inner.log_prob(x, cond)


# ----- AUROC / AUPR ---------------------------------------------------------------------------


def test_auroc_and_aupr_by_hand():
    assert auroc(T([0.0, 1.0]), T([2.0, 3.0])) == 1.0  # perfect separation
    assert aupr(T([0.0, 1.0]), T([2.0, 3.0])) == 1.0
    assert auroc(T([2.0, 3.0]), T([0.0, 1.0])) == 0.0  # reversed
    # ranking in, in, out, out: recall 1/2 at precision 1/3, recall 1 at precision 2/4
    assert aupr(T([2.0, 3.0]), T([0.0, 1.0])) == pytest.approx(0.5 / 3 + 0.5 * 0.5)
    assert auroc(T([1.0, 1.0, 1.0]), T([1.0])) == 0.5  # ties
    assert aupr(T([1.0, 1.0, 1.0]), T([1.0])) == pytest.approx(0.25)  # = OOD fraction
    # out > in in 3 of 4 pairs; ranking out, in, out, in: AP = 1/2 * 1 + 1/2 * 2/3
    assert auroc(T([0.0, 2.0]), T([1.0, 3.0])) == pytest.approx(0.75)
    assert aupr(T([0.0, 2.0]), T([1.0, 3.0])) == pytest.approx(5 / 6)


def test_infinite_scores_are_ranked_and_nan_refused():
    assert auroc(T([0.0, 1.0]), T([math.inf, 5.0])) == 1.0  # zero density = most anomalous
    assert auroc(T([-math.inf, 1.0]), T([math.inf, math.inf])) == 1.0
    with pytest.raises(DgmError, match="NaN"):
        auroc(T([0.0, math.nan]), T([1.0]))


# ----- OOD sets -------------------------------------------------------------------------------


def test_ood_sets_of_digits():
    ds = dgm.load_dataset("digits", classes="0-8")
    x = ds.split("test").x
    sets = ood_sets(ds)
    assert list(sets) == ["noise", "inverted", "flipped", "mirrored", "held_out_classes"]
    for name in ("noise", "inverted", "flipped", "mirrored"):
        assert sets[name].shape == x.shape
        assert sets[name].min() >= 0 and sets[name].max() <= 16
        assert torch.equal(sets[name], sets[name].round())  # integer levels like the raw data
    assert len(torch.unique(sets["noise"])) == 17
    assert torch.equal(sets["inverted"], 16 - x)
    assert torch.equal(sets["flipped"][:, :, 0], x[:, :, -1])
    assert torch.equal(sets["mirrored"][..., 0], x[..., -1])
    assert torch.equal(ood_sets(ds, seed=1)["noise"], ood_sets(ds, seed=1)["noise"])
    full = dgm.load_dataset("digits").split("test")
    assert torch.equal(sets["held_out_classes"], full.x[full.y == 9])  # the excluded class only


def test_held_out_classes_needs_a_class_filter():
    ds = dgm.load_dataset("digits")
    assert "held_out_classes" not in ood_sets(ds)
    with pytest.raises(DataError, match="no class is held out"):
        ood_sets(ds, names=["held_out_classes"])


def test_vector_data_gets_no_image_sets():
    ds = dgm.load_dataset("toy2d:gmm8?n=200")
    sets = ood_sets(ds)
    assert list(sets) == ["noise", "inverted"]
    train = ds.split("train").x
    assert sets["noise"].min() >= train.min() and sets["noise"].max() <= train.max()
    with pytest.raises(DataError, match="needs images"):
        ood_sets(ds, names=["flipped"])


# ----- scores and metrics -------------------------------------------------------------------------


def test_noise_is_detected_by_an_independent_model_of_digits_0_to_8():
    ds = dgm.load_dataset("digits", transforms=["binarize"], classes="0-8")
    m = anomaly_metrics(fit_independent(ds), ds)
    assert m["auroc_noise"]["value"] > 0.9  # measured 1.000
    assert m["auroc_inverted"]["value"] > 0.9  # measured 1.000
    assert m["nll_noise"]["value"] > m["nll_test"]["value"]
    entry = m["auroc_noise"]
    assert set(entry) == {"value", "unit", "n", "what"} and entry["n"] == 2 * 402
    assert m["nll_test"]["unit"] == "nats/example" and m["nll_test"]["n"] == 402
    assert m["nll_held_out_classes"]["n"] == 45  # the nines of the test split


@pytest.fixture(scope="module")
def mnist_without_ones():
    """Binarized MNIST without the digit 1, its held-out ones and 100 blank images."""
    ds = dgm.load_dataset("mnist5k", transforms=["binarize"], classes="0,2-9")
    sets = {**ood_sets(ds, names=["noise", "held_out_classes"]), "blank": torch.zeros(100, 1, 28, 28)}
    return ds, sets


def test_failure_case_simpler_images_get_higher_likelihood_and_typicality_catches_them(mnist_without_ones):
    # Independent Bernoulli fit on binarized MNIST without the digit 1. Blank images and ones
    # light fewer pixels than the training digits, so get a HIGHER likelihood than the test
    # digits (Nalisnick et al. 2019); their NLL is far below the typical NLL, so the
    # typicality score flags them.
    ds, sets = mnist_without_ones
    m = anomaly_metrics(fit_independent(ds), ds, sets=sets)
    for name in ("held_out_classes", "blank"):
        assert m[f"nll_{name}"]["value"] < m["nll_test"]["value"] - 40  # measured 165, 137 vs 216
    assert m["auroc_held_out_classes"]["value"] < 0.2  # measured 0.073
    assert m["auroc_blank"]["value"] == 0.0
    assert m["auroc_typicality_held_out_classes"]["value"] > 0.65  # measured 0.764
    assert m["auroc_typicality_blank"]["value"] > 0.8  # measured 0.904


def test_likelihood_ratio_to_a_background_model_catches_simpler_images(mnist_without_ones):
    # Model: a mixture of 9 independent Bernoullis (the class-conditional model, marginalised);
    # background: one independent Bernoulli. The ratio cancels the "how many pixels are lit"
    # part of the likelihood (Ren et al. 2019); noise, which the background finds even less
    # likely than the model does, is then missed: the ratio is no universal score.
    ds, sets = mnist_without_ones
    m = anomaly_metrics(fit_independent(ds, conditional=True), ds, sets=sets, background=fit_independent(ds))
    assert m["auroc_held_out_classes"]["value"] < 0.4  # measured 0.310
    assert m["auroc_blank"]["value"] < 0.2  # measured 0.066
    assert m["auroc_ratio_held_out_classes"]["value"] > 0.8  # measured 0.893
    assert m["auroc_ratio_blank"]["value"] > 0.8  # measured 0.890
    assert m["auroc_ratio_noise"]["value"] < 0.1 < 0.9 < m["auroc_noise"]["value"]  # measured 0.000, 1.000


def test_likelihood_ratio_against_itself_is_chance():
    ds = dgm.load_dataset("digits", transforms=["binarize"], classes="0-8")
    model = fit_independent(ds)
    m = anomaly_metrics(model, ds, n=50, background=model)
    assert m["auroc_ratio_noise"]["value"] == 0.5  # every ratio is 0
    assert m["auroc_noise"]["value"] == 1.0 and m["nll_test"]["n"] == 50


def test_conditional_model_is_marginalised_over_the_classes(digits_binary):
    model = fit_independent(digits_binary)
    cond = dgm.build("independent", data=digits_binary, conditional=True)
    with torch.no_grad():
        cond.table.copy_(model.table.expand_as(cond.table))  # p(x | c) = p(x) for every c
    x = digits_binary.split("test").x[:20]
    assert torch.allclose(anomaly_scores(cond, digits_binary, x), anomaly_scores(model, digits_binary, x))


def test_bound_model_is_scored_by_its_negative_elbo(digits_binary):
    inner = fit_independent(digits_binary)
    x = digits_binary.split("test").x[:20]
    nll = -data_log_likelihood(inner, digits_binary, x)
    assert torch.allclose(anomaly_scores(GapBound(inner), digits_binary, x), nll + 1.0)
    assert "nll_elbo_test" in anomaly_metrics(GapBound(inner), digits_binary, n=20)


def test_encoder_without_density_is_scored_by_reconstruction_error():
    ds = dgm.load_dataset("digits", transforms=["dequantize", "scale"])
    model = PCACode(ModelConfig(ds.info), ds.transformed("train")[0], k=16)
    x = ds.split("test").x[:10]
    y, _ = ds.apply_transforms(x, torch.Generator().manual_seed(0))
    expected = (model.decode(model.encode(y)[0]) - y).pow(2).flatten(1).sum(1)
    assert torch.allclose(anomaly_scores(model, ds, x).float(), expected)
    m = anomaly_metrics(model, ds, n=100)
    assert m["auroc_noise"]["value"] > 0.9  # measured 1.000
    assert "auroc_typicality_noise" not in m and m["recon_error_test"]["unit"] == "squared error"


def test_model_without_score_is_refused(digits_binary):
    with pytest.raises(DgmError, match="neither a density nor an encoder"):
        anomaly_scores(GenerativeModel(ModelConfig(digits_binary.info)), digits_binary, torch.zeros(1, 1, 8, 8))
