"""A causal transformer over the pixels of an image or the elements of a sequence.

Vaswani et al. (2017), "Attention Is All You Need" (masked self-attention); Parmar et al. (2018),
"Image Transformer", and Chen et al. (2020), "Generative Pretraining from Pixels" (ImageGPT):
an image is a sequence of T = H W pixel tokens in raster order, each carrying its C channels;
Child et al. (2019), "Generating Long Sequences with Sparse Transformers", on the same setting.
Text characters and μ-law audio levels are sequences of T elements with C = 1.

The element x_i's distribution is read off the features at position i of a stack of pre-LayerNorm
causal self-attention blocks (:mod:`dgm.nn.attention`) whose input at position i holds the
element before it:

    u_0 = s + P_0 + c_y,   u_i = E(x_{i-1}) + P_i + c_y   (i = 1 .. T-1),
    h = LN(Blocks(u)),     log p(x | y) = sum_i log p(x_i | h_i)

with s a learned start token, P_i learned positions, c_y a learned class embedding
(``conditional=True``; zero otherwise) and E the element embedding: a table per channel (summed)
for binary and few-level data and sequences, a linear map of the channels scaled to [-1, 1] for
8-bit images (256 levels are ordered, and a linear map shares what a table would learn for each
level from few examples). Position i sees u_0 .. u_i, so h_i depends on x_<i only and the density
is exact in one pass. p(x_i | h_i) is an :class:`ElementOutput` (Bernoulli, categorical, or the
discretized logistic mixture; channels of a pixel autoregressive).

Sampling runs T steps. With ``cached=True`` each step feeds one token through the blocks and
attends over a key/value cache of the earlier positions (O(t) work at step t); ``cached=False``
re-runs the causal pass over the whole prefix (O(t^2)); both draw the same examples from the same
generator (``benchmarks/ar_sampling.py`` measures the ratio).

>>> import dgm
>>> model = dgm.build("transformer", data=dgm.DataInfo((1, 4, 4), "binary"), width=16, layers=2, heads=2)
>>> model.log_prob(torch.zeros(3, 1, 4, 4)).shape
torch.Size([3])
>>> model.sample(2, generator=torch.Generator().manual_seed(0)).shape
torch.Size([2, 1, 4, 4])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from dgm.errors import ConfigError, DataError
from dgm.models.autoregressive.base import AutoregressiveModel
from dgm.models.autoregressive.outputs import OUTPUTS, ElementOutput, element_channels
from dgm.models.base import ModelConfig
from dgm.models.heads import MAX_CATEGORICAL_LEVELS
from dgm.nn.attention import KVCache, TransformerBlock, init_gpt
from dgm.registry import register


@dataclass(frozen=True)
class TransformerConfig(ModelConfig):
    """Configuration of :class:`Transformer`.

    Sized for 2 CPU cores, where attention over every pixel is what costs: on binarized 28x28
    images (784 tokens) a training step of batch 64 took 2.0 s on one thread of a busy 2-core
    machine with these defaults (2 blocks of width 64, about half of it in the attention), 4.7 s
    with 4 blocks of 4 heads, 0.9 s with 2 blocks of width 32 and one head. A ``text:`` run of
    256 characters costs 0.4 s per step of 64 with the defaults.
    """

    width: int = 64  # d_model: features of every token
    layers: int = 2  # transformer blocks
    heads: int = 2  # attention heads per block (width must be a multiple)
    expansion: int = 4  # hidden units of each block's MLP, per feature
    dropout: float = 0.0  # on attention weights and residual branches
    embedding: Literal["auto", "table", "linear"] = "auto"  # auto: table up to 32 levels or for sequences
    output: str = "auto"  # element distribution: auto, bernoulli, categorical, logistic
    mixtures: int = 5  # logistic components per channel (8-bit data)


def embedding_kind(config: TransformerConfig) -> str:
    """The element embedding ``config`` resolves to: ``"table"`` for sequences and data of at
    most :data:`MAX_CATEGORICAL_LEVELS` levels, ``"linear"`` otherwise (8-bit images)."""
    if config.embedding != "auto":
        return config.embedding
    info = config.data
    return "table" if info.is_sequence or (info.levels or 2) <= MAX_CATEGORICAL_LEVELS else "linear"


@register("transformer")
class Transformer(AutoregressiveModel):
    """Causal transformer over pixels (raster order) or sequence elements, with a key/value cache."""

    can_condition = True
    supports = frozenset({"binary", "discrete"})
    # a step over 784 pixel tokens costs about 2 s at batch 64 on one thread: twice the steps of 128
    train_defaults = {"batch_size": 64}
    Config = TransformerConfig

    def __init__(self, config: TransformerConfig):
        super().__init__(config)
        info, width = config.data, config.width
        self.channels = element_channels(info)  # C values per element
        self.length = info.dim // self.channels  # T elements (= positions)
        self.levels = int(info.levels or 2)
        self.output = ElementOutput(info, width, config.output, config.mixtures)
        if embedding_kind(config) == "table":  # level l of channel c is row c L + l
            self.embed_table: nn.Embedding | None = nn.Embedding(self.channels * self.levels, width)
            self.embed_linear: nn.Linear | None = None
            self.register_buffer("offsets", torch.arange(self.channels) * self.levels, persistent=False)
        else:
            self.embed_table, self.embed_linear = None, nn.Linear(self.channels, width)
        self.start = nn.Parameter(torch.zeros(width))
        self.position = nn.Embedding(self.length, width)
        self.cond_embed = nn.Embedding(info.num_classes, width) if config.conditional else None
        self.blocks = nn.ModuleList(
            TransformerBlock(width, config.heads, config.expansion, config.dropout) for _ in range(config.layers)
        )
        self.ln_out = nn.LayerNorm(width)
        embeddings = [m for m in (self.embed_table, self.embed_linear, self.position, self.cond_embed) if m is not None]
        init_gpt(nn.ModuleList([*embeddings, *self.blocks]), config.layers)
        nn.init.normal_(self.start, 0.0, 0.02)

    @classmethod
    def check_config(cls, config: ModelConfig) -> None:
        super().check_config(config)
        assert isinstance(config, TransformerConfig)
        if config.layers < 1:
            raise ConfigError(f"layers must be at least 1, got {config.layers}")
        if config.heads < 1 or config.width < 1 or config.width % config.heads:
            raise ConfigError(f"width ({config.width}) must be a positive multiple of heads ({config.heads})")
        if config.embedding not in ("auto", "table", "linear"):
            raise ConfigError(f"embedding must be auto, table or linear, got {config.embedding!r}")
        if config.output not in OUTPUTS:
            raise ConfigError(f"output must be one of {', '.join(OUTPUTS)}, got {config.output!r}")

    def notes(self, transforms: Sequence[str] = ()) -> list[str]:
        if self.length <= 256:
            return []
        return [
            f"attention over {self.length} positions makes training steps slow on a CPU (about 2 s for a "
            "batch of 64 at 784 positions with the defaults on one thread); sampling uses a key/value cache"
        ]

    # ----- network ------------------------------------------------------------------------
    def elements(self, x_flat: Tensor) -> Tensor:
        """Flat data (B, D) in (C, H, W) order -> elements (B, T, C) in raster order."""
        return x_flat.reshape(x_flat.shape[0], self.channels, self.length).transpose(1, 2)

    def embed(self, x: Tensor) -> Tensor:
        """E(x): elements (B, S, C) of levels -> (B, S, width)."""
        if self.embed_table is not None:
            return self.embed_table(x.long() + self.offsets).sum(-2)  # (B, S, C, width) summed over C
        assert self.embed_linear is not None
        return self.embed_linear(self.output.scaled(x))

    def _inputs(self, tokens: Tensor, first: int, cond: Tensor | None) -> Tensor:
        """u of positions first .. first + S - 1: their tokens (B, S, width) (the start token or
        the previous element's embedding) plus positions and the class embedding."""
        u = tokens + self.position.weight[first : first + tokens.shape[1]]
        if self.cond_embed is not None and cond is not None:
            u = u + self.cond_embed(cond).unsqueeze(1)
        return u  # (B, S, width)

    def features(self, e: Tensor, cond: Tensor | None = None) -> Tensor:
        """h of positions 0 .. S in one causal pass, from the embeddings e (B, S, width) of
        elements 0 .. S-1 -> (B, S + 1, width); h[:, i] depends on e[:, :i] only."""
        h = self._inputs(torch.cat([self.start.expand(e.shape[0], 1, -1), e], 1), 0, cond)
        for block in self.blocks:
            h = block(h)
        return self.ln_out(h)

    def _step(self, x: Tensor, i: int, cond: Tensor | None, caches: list[KVCache]) -> Tensor:
        """h_i (n, width) of position i from its token alone and the caches of positions < i."""
        token = self.embed(x[:, i - 1 : i]) if i > 0 else self.start.expand(x.shape[0], 1, -1)
        h = self._inputs(token, i, cond)  # (n, 1, width)
        for block, cache in zip(self.blocks, caches, strict=True):
            h = block(h, cache)
        return self.ln_out(h)[:, 0]

    def element_params(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Parameters of every p(x_i | x_<i): x (B, *data.shape) -> (B, T, C, P)."""
        xe = self.elements(self._check_levels(self.flat_x(x)))
        cond = self.check_cond(cond, xe.shape[0])
        return self.output.params(self.features(self.embed(xe[:, :-1]), cond), xe)

    def _check_levels(self, x_flat: Tensor) -> Tensor:
        if x_flat.numel() and (x_flat.min() < 0 or x_flat.max() > self.levels - 1):
            raise DataError(f"model '{self.name}' takes levels 0..{self.levels - 1}, got values outside")
        return x_flat

    # ----- the contract -------------------------------------------------------------------
    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x | cond) in nats, (B,), exact, in one causal pass."""
        xe = self.elements(self._check_levels(self.flat_x(x)))  # (B, T, C)
        cond = self.check_cond(cond, xe.shape[0])
        h = self.features(self.embed(xe[:, :-1]), cond)  # (B, T, width)
        return self.output.log_prob(h, xe).sum(1)

    def generate(
        self,
        n: int,
        cond: Tensor | None,
        generator: torch.Generator | None,
        temperature: float,
        cached: bool,
        given: Tensor | None = None,
        keep: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """T steps, one element each; ``cached``: one token per step through the blocks with
        key/value caches, else a whole causal pass over the prefix (the reference)."""
        x = torch.zeros(n, self.length, self.channels, device=self.device, dtype=self.dtype)  # (n, T, C)
        given_e = keep_e = None
        if given is not None and keep is not None:
            self._check_levels(given[keep])
            given_e, keep_e = self.elements(given.to(x.dtype)), self.elements(keep)  # (n, T, C)
        caches = [block.attention.empty_cache(n, self.length) for block in self.blocks] if cached else []
        log_p = x.new_zeros(n)
        for i in range(self.length):
            if cached:
                h = self._step(x, i, cond, caches)
            else:
                h = self.features(self.embed(x[:, :i]), cond)[:, i]
            g = given_e[:, i] if given_e is not None else None
            k = keep_e[:, i] if keep_e is not None else None
            x[:, i], lp = self.output.draw(h, temperature, generator, given=g, keep=k)
            log_p = log_p + lp
        return x.transpose(1, 2).reshape(n, -1), log_p
