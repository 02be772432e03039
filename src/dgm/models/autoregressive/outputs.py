"""The distribution of one element given a network's features, for the autoregressive models
that share one network over positions (PixelCNN, the transformer, WaveNet).

An element is a pixel with its C channels (images) or one value of a sequence. The head is
chosen from the data's declared support by :func:`dgm.models.heads.make_head`: Bernoulli for
binary data, a categorical over the levels for few levels (``digits``, text), a discretized
logistic mixture (Salimans et al. 2017) for 8-bit images, whose size does not grow with the
number of levels. ``output="categorical"`` forces the softmax (WaveNet's 256 μ-law levels).

Channels of a pixel are autoregressive too (R, then G given R, then B given R and G): the
parameters of channel c are a linear map of the features plus a linear map of the pixel's
channels c' < c (a strictly lower-triangular map; for the logistic mixture this generalises the
PixelCNN++ mean coefficients). The element's log-probability is therefore exact:

    log p(x_i | x_<i) = sum_c log p(x_ic | features_i, x_i,<c).

Temperature T divides every logit (Bernoulli, categorical and mixture weights) and multiplies
the logistics' scales; T = 0 takes the most likely level (or the most likely component's mean).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dgm import rng
from dgm.data.info import DataInfo
from dgm.models.discrete import split_logistic_params
from dgm.models.heads import BernoulliHead, CategoricalHead, Head, LogisticMixtureHead, make_head

OUTPUTS = ("auto", "bernoulli", "categorical", "logistic")


def element_channels(info: DataInfo) -> int:
    """Values per element: the channels of an image, 1 for a sequence or a vector."""
    return info.shape[0] if info.is_image else 1


class ElementOutput(nn.Module):
    """p(x_i | features_i): features (..., F) and values (..., C) -> log p (...).

    ``params(h, x)`` gives the head's parameters (..., C, P) of every channel, where the
    parameters of channel c see only x's channels before c; ``log_prob`` sums over channels;
    ``draw`` samples one element channel by channel with a temperature.
    """

    def __init__(self, info: DataInfo, features: int, output: str = "auto", mixtures: int = 5):
        super().__init__()
        if output == "auto" and info.is_sequence:  # characters and mu-law levels are categories
            output = "categorical"
        self.head: Head = make_head(info, output, mixtures=mixtures)
        self.channels = element_channels(info)
        self.per = self.head.params_per_dim
        self.levels = int(info.levels or 2)
        self.proj = nn.Linear(features, self.channels * self.per)
        self.channel_ar = nn.Linear(self.channels, self.channels * self.per, bias=False) if self.channels > 1 else None
        if self.channel_ar is not None:
            nn.init.zeros_(self.channel_ar.weight)
            allowed = torch.arange(self.channels).view(-1, 1) > torch.arange(self.channels).view(1, -1)  # c' < c
            self.register_buffer("channel_mask", allowed.repeat_interleave(self.per, 0).float(), persistent=False)

    def scaled(self, x: Tensor) -> Tensor:
        """Level values 0..L-1 as network inputs in [-1, 1]."""
        return x * (2.0 / max(self.levels - 1, 1)) - 1.0

    def params(self, h: Tensor, x: Tensor | None) -> Tensor:
        """Head parameters (..., C, P) from features h (..., F) and the element's values x
        (..., C) (only channels before c enter channel c; None when C = 1)."""
        out = self.proj(h)
        if self.channel_ar is not None and x is not None:
            out = out + nn.functional.linear(self.scaled(x), self.channel_ar.weight * self.channel_mask)
        return out.view(*h.shape[:-1], self.channels, self.per)

    def log_prob(self, h: Tensor, x: Tensor) -> Tensor:
        """sum_c log p(x_c | h, x_<c): h (..., F), x (..., C) integer levels -> (...)."""
        params = self.params(h, x)
        lead = params.shape[:-2]
        flat = self.head.log_prob(params.reshape(-1, self.channels, self.per), x.reshape(-1, self.channels))
        return flat.view(lead)

    def draw(
        self,
        h: Tensor,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        given: Tensor | None = None,
        keep: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw one element per row: h (n, F) -> values (n, C) and their log-probability (n,)
        at T = 1. Where ``keep`` (n, C) is True the value is ``given`` (n, C) instead of a draw.
        Random numbers are taken channel by channel, in the same order whatever the caller."""
        n = h.shape[0]
        x = h.new_zeros(n, self.channels)
        base = self.proj(h).view(n, self.channels, self.per)
        log_p = h.new_zeros(n)
        for c in range(self.channels):
            p = base[:, c]
            if self.channel_ar is not None and c > 0:
                w = (self.channel_ar.weight * self.channel_mask).view(self.channels, self.per, self.channels)[c]
                p = p + self.scaled(x) @ w.t()
            value = draw_level(self.head, p, temperature, generator)
            if keep is not None and given is not None:
                value = torch.where(keep[:, c], given[:, c].to(value.dtype), value)
            x[:, c] = value
            log_p = log_p + self.head.log_prob(p.unsqueeze(1), value.unsqueeze(1))
        return x, log_p


def draw_level(head: Head, params: Tensor, temperature: float, generator: torch.Generator | None) -> Tensor:
    """One value per row from ``head`` with parameters (n, P), at ``temperature`` (n,) floats.

    Uniforms are drawn (n, P') for every row whatever the temperature, so the random stream
    does not depend on T.
    """
    if isinstance(head, BernoulliHead):
        logit = params[:, 0]
        u = rng.rand(logit.shape, generator, logit.device).to(logit.dtype)
        if temperature == 0:
            return (logit > 0).to(logit.dtype)
        return rng.bernoulli_from_uniform(torch.sigmoid(logit / temperature), u)
    if isinstance(head, CategoricalHead):
        u = rng.rand(params.shape, generator, params.device).to(params.dtype)
        if temperature == 0:
            return params.argmax(-1).to(params.dtype)
        return rng.categorical_from_uniform(params / temperature, u).to(params.dtype)
    if isinstance(head, LogisticMixtureHead):
        logits, mean, log_scale = split_logistic_params(params)
        u_m = rng.rand(logits.shape, generator, logits.device).to(logits.dtype)
        u = rng.rand(logits.shape[:-1], generator, logits.device).to(logits.dtype).clamp(1e-5, 1 - 1e-5)
        if temperature == 0:
            m = logits.argmax(-1, keepdim=True)
            y = mean.gather(-1, m).squeeze(-1)
        else:
            m = rng.categorical_from_uniform(logits / temperature, u_m).unsqueeze(-1)
            mu, s = mean.gather(-1, m).squeeze(-1), log_scale.gather(-1, m).squeeze(-1).exp()
            y = mu + temperature * s * (torch.log(u) - torch.log1p(-u))
        return head._to_levels(y).round()
    raise TypeError(f"no sampler for head {type(head).__name__}")
