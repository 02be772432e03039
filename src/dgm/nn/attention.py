"""Causal self-attention blocks with a key/value cache, for the transformer over pixels and sequences.

Vaswani et al. (2017), "Attention Is All You Need"; pre-LayerNorm blocks as in GPT-2 (Radford et
al. 2019) and Xiong et al. (2020), "On Layer Normalization in the Transformer Architecture":

    h <- h + Attention(LN(h)),   h <- h + MLP(LN(h)),
    Attention(q, k, v)_t = sum_{s <= t} softmax_s(q_t . k_s / sqrt(d_head)) v_s   (per head).

Position t attends to positions s <= t only, so a stack of blocks keeps the autoregressive
property: output t depends on inputs 0..t. A whole sequence is one call of
``torch.nn.functional.scaled_dot_product_attention(..., is_causal=True)``, whose fused kernel
never builds the (T, T) matrix of every head (784 pixels per image fit in memory).

Key/value cache. When tokens arrive one at a time (sampling), the keys and values of earlier
positions do not change: a :class:`KVCache` per block holds them in tensors (n, heads, T, d_head)
allocated once and filled in place, and a step computes the query, key and value of the new
token only and attends over the cache. The outputs are those of the whole causal pass over the
prefix, at O(t) cost for step t instead of O(t^2) (Ramachandran et al. 2017, "Fast generation for
convolutional autoregressive models", applies the same idea to convolutions).

>>> block = TransformerBlock(width=16, heads=4)
>>> h = torch.randn(2, 5, 16)
>>> full = block(h)                                   # (2, 5, 16), one causal pass
>>> cache = block.attention.empty_cache(2, 5)
>>> steps = torch.cat([block(h[:, t : t + 1], cache) for t in range(5)], 1)
>>> torch.allclose(full, steps, atol=1e-5)
True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgm.errors import ConfigError


class KVCache:
    """The keys and values of the positions seen so far, for one attention layer.

    ``keys`` and ``values`` are (n, heads, max_len, d_head), allocated once; ``length`` positions
    are filled. :meth:`append` writes the keys and values of new positions in place.
    """

    def __init__(self, keys: Tensor, values: Tensor):
        self.keys, self.values, self.length = keys, values, 0

    @property
    def max_len(self) -> int:
        return self.keys.shape[2]

    def append(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store k, v (n, heads, S, d_head) at the next S positions; return the keys and values
        of every position so far, (n, heads, length, d_head) views of the cache."""
        start, stop = self.length, self.length + k.shape[2]
        if stop > self.max_len:
            raise ValueError(f"the cache holds {self.max_len} positions; {stop} were asked for")
        self.keys[:, :, start:stop] = k
        self.values[:, :, start:stop] = v
        self.length = stop
        return self.keys[:, :, :stop], self.values[:, :, :stop]


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which position t sees positions <= t.

    Shapes: (B, S, width) -> (B, S, width). Without a cache the S inputs are positions 0..S-1;
    with a :class:`KVCache` holding L positions, they are positions L..L+S-1 and attend to the
    cached ones too (S = 1 when sampling).
    """

    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if width < 1 or heads < 1 or width % heads:
            raise ConfigError(f"width ({width}) must be a positive multiple of heads ({heads})")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
        self.width, self.heads, self.head_dim, self.dropout = width, heads, width // heads, dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def empty_cache(self, n: int, max_len: int) -> KVCache:
        """A cache for ``n`` sequences of up to ``max_len`` positions, on the layer's device and dtype."""
        w = self.qkv.weight
        shape = (n, self.heads, max_len, self.head_dim)
        return KVCache(w.new_zeros(shape), w.new_zeros(shape))

    def forward(self, h: Tensor, cache: KVCache | None = None) -> Tensor:
        b, s, _ = h.shape
        q, k, v = self.qkv(h).view(b, s, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # 3 x (B, H, S, dh)
        p = self.dropout if self.training else 0.0
        if cache is None or cache.length == 0:
            if cache is not None:
                cache.append(k, v)
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # (B, H, S, dh)
        else:
            past = cache.length
            k, v = cache.append(k, v)  # (B, H, past + S, dh)
            mask = None
            if s > 1:  # new position past + i sees cached positions and new ones up to i
                mask = torch.ones(s, past + s, dtype=torch.bool, device=h.device).tril(diagonal=past)
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.proj(out.transpose(1, 2).reshape(b, s, self.width))  # (B, S, width)


class TransformerBlock(nn.Module):
    """A pre-LayerNorm transformer block: causal self-attention, then a position-wise MLP
    (``expansion`` x width hidden units, GELU), each added to the residual stream.

    Shapes: (B, S, width) -> (B, S, width); ``cache`` as in :class:`CausalSelfAttention`.
    """

    def __init__(self, width: int, heads: int, expansion: int = 4, dropout: float = 0.0):
        super().__init__()
        if expansion < 1:
            raise ConfigError(f"expansion must be at least 1, got {expansion}")
        self.ln_attention = nn.LayerNorm(width)
        self.attention = CausalSelfAttention(width, heads, dropout)
        self.ln_mlp = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, expansion * width), nn.GELU(), nn.Linear(expansion * width, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor, cache: KVCache | None = None) -> Tensor:
        h = h + self.drop(self.attention(self.ln_attention(h), cache))
        return h + self.drop(self.mlp(self.ln_mlp(h)))

    def residual_layers(self) -> list[nn.Linear]:
        """The layers whose outputs are added to the residual stream (GPT-2 scales their
        initial weights by 1/sqrt(2 * layers))."""
        return [self.attention.proj, self.mlp[2]]


def init_gpt(module: nn.Module, layers: int, std: float = 0.02) -> None:
    """GPT-2's initialisation: every Linear and Embedding weight ~ N(0, std^2), biases 0, and
    the residual projections ~ N(0, std^2 / (2 layers)) so the residual stream's variance does
    not grow with depth (Radford et al. 2019)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, std)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in module.modules():  # a second pass: the first reaches a block before its layers
        if isinstance(m, TransformerBlock):
            for layer in m.residual_layers():
                nn.init.normal_(layer.weight, 0.0, std / math.sqrt(2 * layers))
