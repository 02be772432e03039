"""The linear probe: a code that keeps the labels is probed well above chance, noise is not."""

from __future__ import annotations

import pytest
import torch

import dgm
from dgm.errors import ConfigError, DataError
from dgm.eval.representation import latent_means, linear_probe
from dgm.models.base import GenerativeModel, ModelConfig


class PCACode(GenerativeModel):
    """A linear autoencoder with no density: z = (x - mean) V, x_hat = mean + z V^T, with V the
    top ``k`` principal directions of ``x_train``. ``encode`` returns (mean, logvar) like a VAE."""

    has_latent = True
    has_encoder = True

    def __init__(self, config: ModelConfig, x_train: torch.Tensor, k: int):
        super().__init__(config)
        flat = x_train.flatten(1)
        self.register_buffer("mean", flat.mean(0))  # (D,)
        _, _, v = torch.linalg.svd(flat - self.mean, full_matrices=False)
        self.register_buffer("basis", v[:k].T.contiguous())  # (D, k)

    def encode(self, x):
        z = (x.flatten(1) - self.mean) @ self.basis  # (B, k)
        return z, torch.zeros_like(z)

    def decode(self, z):
        return (self.mean + z @ self.basis.T).reshape(-1, *self.config.data.shape)


class NoiseCode(GenerativeModel):
    """An 'encoder' whose code is Gaussian noise, independent of x."""

    has_latent = True
    has_encoder = True

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.gen = torch.Generator().manual_seed(0)

    def encode(self, x):
        return torch.randn(x.shape[0], 8, generator=self.gen)

    def decode(self, z):
        raise NotImplementedError


@pytest.fixture(scope="module")
def digits():
    return dgm.load_dataset("digits")


def pca(ds, k: int = 16) -> PCACode:
    return PCACode(ModelConfig(ds.info), ds.transformed("train")[0], k)


def test_latent_means_takes_the_mean_of_a_tuple_and_flattens(digits):
    model = pca(digits, k=5)
    x = digits.transformed("test")[0][:7]
    z = latent_means(model, x, batch_size=3)
    assert z.shape == (7, 5)
    assert torch.allclose(z, model.encode(x)[0])


def test_pca_code_is_probed_well_above_chance(digits):
    m = linear_probe(pca(digits), digits)
    acc, pixels = m["probe_accuracy"], m["probe_accuracy_pixels"]
    assert acc["value"] > 0.85  # measured 0.893 on the 447 test digits (pixels 0.906)
    assert pixels["value"] > 0.85
    assert acc["n"] == pixels["n"] == 447
    assert acc["se"] == pytest.approx((acc["value"] * (1 - acc["value"]) / 447) ** 0.5)
    assert acc["unit"] == "fraction" and "16-dim" in acc["what"]


def test_noise_code_is_probed_near_chance(digits):
    m = linear_probe(NoiseCode(ModelConfig(digits.info)), digits)
    assert m["probe_accuracy"]["value"] < 0.2  # measured 0.101; chance 0.1, se about 0.014


def test_model_without_encoder_is_refused(digits, digits_binary):
    with pytest.raises(ConfigError, match="has no encoder"):
        linear_probe(dgm.build("independent", data=digits_binary), digits_binary)


def test_unlabelled_data_is_refused():
    ds = dgm.load_dataset("toy2d:gmm8?n=200")
    with pytest.raises(DataError, match="labelled"):
        linear_probe(pca(ds, k=2), ds)


def test_a_conditional_encoder_is_given_the_labels(digits):
    """A CVAE's encoder sees each example's label (it could not encode without it)."""
    cvae = dgm.build("cvae", data=digits, latent_dim=2, hidden=(16,), channels=4)
    metrics = linear_probe(cvae, digits, max_iter=50)
    assert metrics["probe_accuracy"]["n"] == digits.split("test").n
    with torch.no_grad():
        one = latent_means(cvae, digits.split("test").x[:3], cond=torch.tensor([0, 1, 2]))
        other = latent_means(cvae, digits.split("test").x[:3], cond=torch.tensor([3, 3, 3]))
    assert not torch.allclose(one, other)
