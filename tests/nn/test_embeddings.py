"""Timestep embeddings: the sinusoidal formula of the DDPM code, odd widths, the MLP on top."""

from __future__ import annotations

import math

import pytest
import torch

from dgm.errors import ConfigError
from dgm.nn.embeddings import TimeEmbedding, timestep_embedding


def test_sinusoidal_embedding_matches_its_formula():
    """emb(t)_i = sin(t w_i), emb(t)_{half+i} = cos(t w_i), w_i = 10000^(-i / (half - 1))."""
    t = torch.tensor([0.0, 1.0, 37.5, 999.0], dtype=torch.float64)
    dim, half = 10, 5
    expected = torch.empty(4, dim, dtype=torch.float64)
    for b, tb in enumerate(t.tolist()):
        for i in range(half):
            w = 10000.0 ** (-i / (half - 1))
            expected[b, i], expected[b, half + i] = math.sin(tb * w), math.cos(tb * w)
    emb = timestep_embedding(t, dim)
    assert emb.dtype == torch.float64
    torch.testing.assert_close(emb, expected)


def test_frequencies_span_one_to_one_over_max_period():
    half = 4
    emb = timestep_embedding(torch.tensor([math.pi / 2]), 2 * half, max_period=100.0)
    assert emb[0, 0] == pytest.approx(1.0)  # sin(pi/2 * 1)
    assert emb[0, half - 1] == pytest.approx(math.sin(math.pi / 2 / 100.0), rel=1e-5)  # lowest frequency 1/100


def test_odd_width_is_padded_with_a_zero_and_integers_are_accepted():
    emb = timestep_embedding(torch.tensor([3, 7]), 7)  # long timesteps
    assert emb.shape == (2, 7) and emb.dtype == torch.float32
    assert torch.all(emb[:, -1] == 0)
    torch.testing.assert_close(emb[:, :6], timestep_embedding(torch.tensor([3.0, 7.0]), 6))


def test_time_embedding_is_an_mlp_of_the_sinusoids():
    torch.manual_seed(0)
    module = TimeEmbedding(16, 32)
    t = torch.tensor([0.0, 5.0, 500.0])
    mlp = module.mlp
    expected = mlp[2](torch.nn.functional.silu(mlp[0](timestep_embedding(t, 16))))
    torch.testing.assert_close(module(t), expected)
    assert not torch.allclose(module(t)[0], module(t)[2])


@pytest.mark.parametrize("dim", [0, 1])
def test_too_narrow_embedding_is_refused(dim):
    with pytest.raises(ConfigError, match="dim >= 2"):
        timestep_embedding(torch.zeros(2), dim)
    with pytest.raises(ConfigError, match="dim >= 2"):
        TimeEmbedding(dim, 8)
