"""NADE: the neural autoregressive distribution estimator.

Larochelle & Murray (2011), "The Neural Autoregressive Distribution Estimator" (AISTATS). One
hidden layer per dimension, all sharing the weights W (H, D) and c (H): in an ordering o,

    a_i = c + sum_{j<i} W[:, o_j] x_{o_j},   h_i = sigmoid(a_i),   p(x_{o_i} | x_{o_<i}) from V_i h_i + b_i,

so a_{i+1} = a_i + W[:, o_i] x_{o_i}: every conditional comes from one running sum and
log p(x) = sum_i log p(x_{o_i} | x_{o_<i}) costs O(D H), not D passes of O(D H). The output
head comes from the data's support (:func:`dgm.models.heads.make_head`): Bernoulli for binary
data, a categorical over the levels for few levels (V_i has one row per level), a mixture of
discretized logistics (Salimans et al. 2017, 3M rows per V_i) for 8-bit data, never a 256-way
softmax by default. Inputs are fed as x / (L - 1). With ``conditional=True`` a learned vector
per class is added to c. Channels of an image are dimensions like any other (C, H, W flattened).

Memory. All the hidden values of a batch are B x D x H floats (200 MB for 128 binarized 28x28
digits at H = 500, and autograd would keep several such tensors). The pass goes through the
positions in chunks of k >= sqrt(D) positions and about 2^20 hidden values (``CHUNK_ELEMENTS``),
so evaluating log p holds one chunk; for training only the pre-activations at the D / k chunk
starts are kept, and the backward (written by hand, :class:`_NADEPass`: a reverse running sum of
dL/da gives the gradient of W, as in the paper's algorithm 1) recomputes each chunk's hidden
values from its start. Memory is O(sqrt(D) B H) (about 25 MB for that batch), and the step is
faster than keeping everything: the chunks stay in the CPU's caches (0.15 s against 0.20 s for a
batch of 64, 0.41 s against 0.58 s for 128, one thread of a busy machine, measured side by side).

Sampling (``cached=True``) keeps a_i and adds W[:, o_i] x_{o_i} once x_{o_i} is drawn: O(H)
per dimension. ``cached=False`` recomputes the whole pass at every step; both draw the same
samples from the same generator.

>>> import dgm
>>> model = dgm.build("nade", data=dgm.DataInfo((1, 4, 4), "binary"), hidden=16)
>>> x = model.sample(3, generator=torch.Generator().manual_seed(0))
>>> x.shape, model.log_prob(x).shape
(torch.Size([3, 1, 4, 4]), torch.Size([3]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from dgm.errors import ConfigError, DataError
from dgm.models.autoregressive.base import AutoregressiveModel, keep_given
from dgm.models.autoregressive.outputs import OUTPUTS, draw_level
from dgm.models.base import ModelConfig
from dgm.models.heads import make_head
from dgm.registry import register

CHUNK_ELEMENTS = 1 << 20  # hidden values (B x positions x H) computed at once: 4 MB of float32, cache-sized


@dataclass(frozen=True)
class NADEConfig(ModelConfig):
    """Configuration of :class:`NADE`.

    The default (H = 500, as in the paper) has 2H D + H + D parameters on binary data (785 k on
    28x28); a training step on binarized 28x28 takes about 0.11 s at batch 64 and 0.2 s at 128
    on one thread (forward, backward and Adam). NADE wants a larger learning rate than dgm's
    default, so ``dgm train nade`` uses lr 0.01 and batch 64 unless told otherwise
    (:attr:`NADE.train_defaults`): they reached 84.8 nats on binarized ``mnist5k`` in 2 minutes
    on a busy 2-core machine, against 148.6 with lr 1e-3 and batch 128.
    """

    hidden: int = 500  # H, the width of the shared hidden layer
    order: Literal["natural", "random"] = "natural"  # raster order, or a random ordering drawn from order_seed
    order_seed: int = 0
    output: Literal["auto", "bernoulli", "categorical", "logistic"] = "auto"  # auto: from the data's support
    mixtures: int = 5  # logistics per dimension of the 8-bit head


def position_chunks(dim: int, batch: int, hidden: int) -> list[tuple[int, int]]:
    """Ranges [s, e) of positions covering 0..dim-1: about ``CHUNK_ELEMENTS`` hidden values each,
    and at least sqrt(D) positions, so there are no more chunk starts than positions in a chunk."""
    size = min(dim, max(math.isqrt(dim), CHUNK_ELEMENTS // max(batch * hidden, 1), 1))
    return [(s, min(s + size, dim)) for s in range(0, dim, size)]


def fill_hidden(inputs: Tensor, weight: Tensor, start: Tensor, s: int, e: int, out: Tensor) -> Tensor:
    """h_i = sigmoid(a_i) for positions i in [s, e) into ``out`` (e - s, B, H), from a_s = ``start``
    (B, H) and a_{i+1} = a_i + inputs_i weight_i (``inputs`` (D, B), ``weight`` (D, H), in
    position order). Returns a_e (B, H)."""
    out[0] = start
    for i in range(s + 1, e):
        torch.addr(out[i - s - 1], inputs[i - 1], weight[i - 1], out=out[i - s])
    end = torch.addr(out[e - s - 1], inputs[e - 1], weight[e - 1])
    out.sigmoid_()
    return end


def _forward(inputs, bias, weight, out_weight, out_bias, keep_starts: bool) -> tuple[Tensor, Tensor | None]:
    """Head parameters (D, B, P) of every position (see :func:`nade_params`), and with
    ``keep_starts`` the pre-activations at the chunk starts (chunks, B, H) for the backward."""
    dim, batch = inputs.shape
    hidden = weight.shape[1]
    chunks = position_chunks(dim, batch, hidden)
    out = inputs.new_empty(dim, batch, out_weight.shape[1])
    starts = inputs.new_empty(len(chunks), batch, hidden) if keep_starts else None
    buffer = inputs.new_empty(chunks[0][1], batch, hidden)  # one chunk's h (k, B, H)
    a = bias
    for n, (s, e) in enumerate(chunks):
        if starts is not None:
            starts[n] = a
        h = buffer[: e - s]
        a = fill_hidden(inputs, weight, a, s, e, h)
        torch.baddbmm(out_bias[s:e, None, :], h, out_weight[s:e].transpose(1, 2), out=out[s:e])  # V_i h_i + b_i
    return out, starts


class _NADEPass(torch.autograd.Function):
    """:func:`nade_params` with a hand-written backward in O(D H) per example, which recomputes
    each chunk's hidden values from the pre-activation at its start.

    With dL/da_i = (V_i^T dL/dout_i) h_i (1 - h_i) and S_i = sum_{j>i} dL/da_j (a reverse running
    sum): dL/dW_i = sum_b inputs_bi S_bi, dL/dinputs_bi = W_i . S_bi, dL/dc_b = sum_i dL/da_bi.
    """

    @staticmethod
    def forward(ctx, inputs, bias, weight, out_weight, out_bias):
        out, starts = _forward(inputs, bias, weight, out_weight, out_bias, keep_starts=True)
        ctx.save_for_backward(inputs, weight, out_weight, starts)
        return out

    @staticmethod
    def backward(ctx, grad):  # grad (D, B, P)
        inputs, weight, out_weight, starts = ctx.saved_tensors
        dim, batch = inputs.shape
        hidden = weight.shape[1]
        chunks = position_chunks(dim, batch, hidden)
        grad_inputs = torch.empty_like(inputs) if ctx.needs_input_grad[0] else None
        grad_weight, grad_out_weight = torch.empty_like(weight), torch.empty_like(out_weight)
        size = chunks[0][1]
        later = inputs.new_zeros(size + 1, batch, hidden)  # later[i] = sum_{j >= i} dL/da_j
        recomputed = inputs.new_empty(size, batch, hidden)
        carry = inputs.new_zeros(batch, hidden)  # sum of dL/da over the positions after the chunk
        for n in reversed(range(len(chunks))):
            s, e = chunks[n]
            k = e - s
            h = recomputed[:k]  # (k, B, H)
            fill_hidden(inputs, weight, starts[n], s, e, h)
            torch.bmm(grad[s:e].transpose(1, 2), h, out=grad_out_weight[s:e])  # (k, P, H)
            da = torch.bmm(grad[s:e], out_weight[s:e], out=later[:k])  # dL/dh (k, B, H)
            torch.ops.aten.sigmoid_backward.grad_input(da, h, grad_input=da)  # dL/da = dL/dh h (1 - h), in place
            later[k] = carry
            for i in range(k - 1, -1, -1):
                later[i].add_(later[i + 1])
            after = later[1 : k + 1]  # S_i = sum_{j > i} dL/da_j  (k, B, H)
            torch.bmm(inputs[s:e, None, :], after, out=grad_weight[s:e, None, :])  # (k, 1, H)
            if grad_inputs is not None:
                torch.bmm(weight[s:e, None, :], after.transpose(1, 2), out=grad_inputs[s:e, None, :])  # (k, 1, B)
            carry = later[0].clone()
        return grad_inputs, carry, grad_weight, grad_out_weight, grad.sum(1)


def nade_params(inputs: Tensor, bias: Tensor, weight: Tensor, out_weight: Tensor, out_bias: Tensor) -> Tensor:
    """The NADE pass: head parameters (D, B, P) of every position, in position order.

    ``inputs`` (D, B) the values fed in position order, ``bias`` (B, H) c (+ the class's vector),
    ``weight`` (D, H) the columns of W in position order, ``out_weight`` (D, P, H) and
    ``out_bias`` (D, P) the V_i and b_i. Position i sees the inputs before i only.
    """
    tensors = (inputs, bias, weight, out_weight, out_bias)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return _NADEPass.apply(*tensors)
    return _forward(*tensors, keep_starts=False)[0]


@register("nade")
class NADE(AutoregressiveModel):
    """NADE (Larochelle & Murray 2011): one shared hidden layer, all conditionals in O(D H)."""

    can_condition = True
    supports = frozenset({"binary", "discrete"})
    train_defaults = {"lr": 0.01, "batch_size": 64}
    Config = NADEConfig

    order: Tensor

    def __init__(self, config: NADEConfig):
        super().__init__(config)
        info, hidden = config.data, config.hidden
        dim = info.dim
        self.head = make_head(info, config.output, mixtures=config.mixtures)
        per = self.head.params_per_dim
        self.input_scale = 1.0 / (int(info.levels or 2) - 1)  # inputs in [0, 1]
        # uniform on +-1/sqrt(fan in), as nn.Linear
        self.weight = nn.Parameter(torch.empty(hidden, dim).uniform_(-(dim**-0.5), dim**-0.5))  # W: column d reads x_d
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))  # c
        self.out_weight = nn.Parameter(torch.empty(dim, per, hidden).uniform_(-(hidden**-0.5), hidden**-0.5))  # V_d
        self.out_bias = nn.Parameter(torch.zeros(dim, per))  # b_d
        if config.conditional:  # a learned vector per class, added to c
            self.cond_hidden = nn.Embedding(info.num_classes, hidden)
        with torch.device("cpu"):  # where the generator is (also when built on the meta device)
            gen = torch.Generator().manual_seed(config.order_seed)
            order = torch.arange(dim) if config.order == "natural" else torch.randperm(dim, generator=gen)
        self.register_buffer("order", order.to(self.weight.device))  # order[i] = dimension at step i

    @classmethod
    def check_config(cls, config: NADEConfig) -> None:
        super().check_config(config)
        info = config.data
        if config.hidden < 1:
            raise ConfigError(f"nade needs hidden >= 1, got hidden={config.hidden}")
        if config.output not in OUTPUTS:
            raise ConfigError(f"nade output must be one of {', '.join(OUTPUTS)}, got {config.output!r}")
        if config.mixtures < 1:
            raise ConfigError(f"nade needs mixtures >= 1, got mixtures={config.mixtures}")
        if info.support == "discrete" and (info.levels or 0) < 2:
            raise DataError(f"nade needs the number of levels of discrete data, got {info.describe()}")
        if config.output == "bernoulli" and info.support != "binary":
            raise DataError(
                f"nade with output=bernoulli takes binary data, got {info.describe()}; "
                "binarize it with --transform binarize, or use --set output=auto"
            )

    # ----- the pass -----------------------------------------------------------------------
    def _bias(self, cond: Tensor | None, n: int) -> Tensor:
        """c (+ the class's vector) for each example, (n, H)."""
        c = self.hidden_bias.expand(n, -1)
        return c + self.cond_hidden(cond) if cond is not None else c

    def _position_params(self, flat: Tensor, cond: Tensor | None) -> Tensor:
        """Head parameters (D, B, P) in position order for flat x (B, D) in data order."""
        inputs = (self._in_order(flat, 1) * self.input_scale).t().contiguous()  # (D, B)
        weight = self._in_order(self.weight.t(), 0).contiguous()  # (D, H)
        out_weight, out_bias = self._in_order(self.out_weight, 0), self._in_order(self.out_bias, 0)
        return nade_params(inputs, self._bias(cond, flat.shape[0]), weight, out_weight, out_bias)

    def _in_order(self, t: Tensor, dim: int) -> Tensor:
        """``t`` with axis ``dim`` (one entry per data dimension) in the model's ordering."""
        return t if self.config.order == "natural" else t.index_select(dim, self.order)

    def params(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Head parameters of every conditional p(x_d | x_<d): x (B, *data.shape) -> (B, D, P),
        dimensions in data order (flattened), not in the model's ordering."""
        flat = self.flat_x(x)
        cond = self.check_cond(cond, flat.shape[0])
        by_position = self._position_params(flat, cond).transpose(0, 1)  # (B, D, P) in position order
        return by_position.index_select(1, torch.argsort(self.order))  # argsort: the position of each dimension

    def log_prob(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """log p(x) in nats, (B,)."""
        flat = self.flat_x(x)
        cond = self.check_cond(cond, flat.shape[0])
        params = self._position_params(flat, cond).transpose(0, 1)  # (B, D, P)
        return self.head.log_prob(params, self._in_order(flat, 1))

    # ----- sampling -----------------------------------------------------------------------
    def generate(self, n, cond, generator, temperature, cached, given=None, keep=None):
        """Dimensions in the model's ordering, each drawn from V_i sigmoid(a_i) + b_i with a_i kept
        and updated (``cached``) or recomputed by a whole pass (see the module docstring)."""
        weight = self.weight.t()  # (D, H): row d reads x_d
        a = self._bias(cond, n)  # (n, H): a_0 = c
        x = a.new_zeros(n, self.config.data.dim)
        log_p = a.new_zeros(n)
        for i, d in enumerate(self.order.tolist()):
            if cached:
                params = torch.addmm(self.out_bias[d], torch.sigmoid(a), self.out_weight[d].t())  # (n, P)
            else:
                params = self._position_params(x, cond)[i]
            value = keep_given(draw_level(self.head, params, temperature, generator), d, given, keep)  # (n,)
            log_p += self.head.log_prob(params.unsqueeze(1), value.unsqueeze(1))
            x[:, d] = value
            if cached:
                a = torch.addr(a, value * self.input_scale, weight[d])  # a_{i+1} = a_i + W[:, d] x_d
        return x, log_p
