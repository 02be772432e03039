"""Causal self-attention: causality, the key/value cache against the whole pass, errors."""

from __future__ import annotations

import pytest
import torch

from dgm.errors import ConfigError
from dgm.nn.attention import CausalSelfAttention, TransformerBlock, init_gpt


def block(width: int = 8, heads: int = 2, seed: int = 0) -> TransformerBlock:
    """A float64 block with every parameter redrawn (no zero or identity structure)."""
    torch.manual_seed(seed)
    b = TransformerBlock(width, heads, expansion=2).double()
    with torch.no_grad():
        for p in b.parameters():
            p.copy_(0.5 * torch.randn_like(p))
    return b.eval()


def test_output_t_depends_on_inputs_up_to_t_and_no_later():
    b = block()
    h = torch.randn(1, 6, 8, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda h: b(h)[0], h)[:, :, 0]  # (T, width, T, width)
    depends = jac.abs().sum((1, 3)) > 0  # (T, T): output t depends on input s
    assert torch.equal(depends, torch.ones(6, 6, dtype=torch.bool).tril())


@pytest.mark.parametrize("chunks", [(1,) * 7, (3, 1, 2, 1), (2, 5), (7,)])
def test_cached_steps_give_the_whole_causal_pass(chunks):
    """Feeding positions in chunks (one at a time when sampling) through a cache gives the
    outputs of one causal pass over the whole sequence."""
    b = block(width=12, heads=3)
    h = torch.randn(4, 7, 12, dtype=torch.float64)
    full = b(h)
    cache = b.attention.empty_cache(4, 7)
    assert cache.keys.shape == (4, 3, 7, 4) and cache.keys.dtype == torch.float64
    outs, start = [], 0
    for size in chunks:
        outs.append(b(h[:, start : start + size], cache))
        start += size
    assert cache.length == 7
    assert torch.allclose(torch.cat(outs, 1), full, atol=1e-12)
    with pytest.raises(ValueError, match="holds 7 positions"):
        b(h[:, :1], cache)


def test_the_cache_is_filled_in_place_and_earlier_keys_are_kept():
    attention = CausalSelfAttention(8, 2).double()
    cache = attention.empty_cache(2, 5)
    keys = cache.keys
    h = torch.randn(2, 5, 8, dtype=torch.float64)
    for t in range(5):
        attention(h[:, t : t + 1], cache)
        assert cache.keys is keys  # preallocated, never reallocated
    _, k, v = attention.qkv(h).view(2, 5, 3, 2, 4).permute(2, 0, 3, 1, 4)
    assert torch.allclose(cache.keys, k) and torch.allclose(cache.values, v)


def test_dropout_acts_in_training_only():
    b = TransformerBlock(8, 2, dropout=0.5)
    h = torch.randn(2, 5, 8)
    b.eval()
    assert torch.equal(b(h), b(h))
    b.train()
    assert not torch.equal(b(h), b(h))


def test_gpt_initialisation_scales_the_residual_projections():
    blocks = torch.nn.ModuleList(TransformerBlock(64, 4) for _ in range(8))
    init_gpt(blocks, layers=8)
    assert blocks[0].attention.qkv.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert blocks[0].attention.proj.weight.std().item() == pytest.approx(0.02 / 4, rel=0.1)
    assert blocks[0].mlp[2].weight.std().item() == pytest.approx(0.02 / 4, rel=0.1)
    assert torch.all(blocks[0].attention.qkv.bias == 0)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"width": 10, "heads": 3}, "multiple of heads"),
        ({"width": 8, "heads": 0}, "multiple of heads"),
        ({"width": 8, "heads": 2, "dropout": 1.0}, "dropout"),
        ({"width": 8, "heads": 2, "expansion": 0}, "expansion"),
    ],
)
def test_bad_sizes_are_refused(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        TransformerBlock(**kwargs)
