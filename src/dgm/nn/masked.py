"""Masked linear layers and the MADE connectivity masks.

Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked Autoencoder for Distribution
Estimation" (ICML). Every unit gets a *degree*: input ``d`` gets its position ``m(d)`` in 1..D in
the ordering; hidden unit ``k`` of layer ``l`` gets ``m^l(k)`` in 1..D-1. Then

- a hidden unit sees a unit below it iff ``m^l(k) >= m^{l-1}(k')`` (eq. 12 of the paper),
- output ``d`` sees a unit below it iff ``m(d) > m^L(k)`` (eq. 13, strict),

so output ``d`` depends only on inputs that come strictly before ``d`` in the ordering, and the
network computes the conditionals p(x_d | x_<d) of an autoregressive factorisation.

The mask functions are pure: degrees in, boolean masks out, shaped
``(out_features, in_features)`` like ``nn.Linear.weight``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MaskedLinear(nn.Linear):
    """A linear layer ``y = x (W * M)^T + b`` whose weight is multiplied by a 0/1 mask ``M``.

    The mask is a boolean buffer ``mask`` of shape ``(out_features, in_features)`` (all ones
    until :meth:`set_mask`), kept beside a copy ``weight_mask`` in the weight's dtype that the
    forward multiplies by: one multiplication, cheaper than a ``where`` in both directions of
    a training step, and none when the mask (given on the CPU) is all ones. Both are structure, not
    learned state: they are not saved in the state dict (``persistent=False``); the owner
    rebuilds them from its own config, as MADE does from its mask seed.

    >>> layer = MaskedLinear(3, 2)
    >>> layer.set_mask(torch.tensor([[1, 0, 0], [1, 1, 0]]))
    >>> layer(torch.zeros(5, 3)).shape
    torch.Size([5, 2])
    """

    mask: Tensor
    weight_mask: Tensor

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__(in_features, out_features, bias)
        self.register_buffer("mask", torch.ones(out_features, in_features, dtype=torch.bool), persistent=False)
        self.register_buffer("weight_mask", torch.ones_like(self.weight, requires_grad=False), persistent=False)
        self.full = True  # the mask is all ones

    def set_mask(self, mask: Tensor) -> None:
        """Use ``mask`` (shape ``(out_features, in_features)``, 0/1 or bool) from now on.

        The buffers are replaced (``mask`` by the argument itself when it is already boolean
        and on the weight's device), never written in place, so a graph built with the
        previous mask can still be backpropagated.
        """
        if tuple(mask.shape) != tuple(self.weight.shape):
            raise ValueError(f"mask shape {tuple(mask.shape)} != weight shape {tuple(self.weight.shape)}")
        self.mask = mask.to(device=self.weight.device, dtype=torch.bool)
        self.weight_mask = self.mask.to(self.weight.dtype)
        # known without a device sync only for a mask given on the CPU (as MADE conditioners build them)
        self.full = mask.device.type == "cpu" and bool(mask.all())

    def masked_weight(self) -> Tensor:
        """The effective weight ``W * M``, (out_features, in_features); ``W`` itself when M is all ones."""
        if self.full:
            return self.weight
        if self.weight_mask.dtype != self.weight.dtype:  # the weight was cast on its own
            self.weight_mask = self.mask.to(self.weight.dtype)
        return self.weight * self.weight_mask

    def forward(self, x: Tensor, weight: Tensor | None = None) -> Tensor:
        """``x (W * M)^T + b``; pass ``weight=layer.masked_weight()`` to reuse it across calls."""
        return F.linear(x, self.masked_weight() if weight is None else weight, self.bias)


# ----- orderings and degrees --------------------------------------------------------------------


def random_order(dim: int, generator: torch.Generator | None = None) -> Tensor:
    """A random ordering of ``dim`` dimensions: ``order[i]`` is the dimension generated at step i."""
    return torch.randperm(dim, generator=generator)


def input_degrees(order: Tensor) -> Tensor:
    """Degrees ``m(d)`` in 1..D of the inputs for the ordering ``order``.

    ``order[i]`` is the dimension generated at step ``i``, so ``m(order[i]) = i + 1``: the
    inverse permutation, shifted to start at 1.
    """
    degrees = torch.empty_like(order)
    degrees[order] = torch.arange(1, order.numel() + 1, dtype=order.dtype)
    return degrees


def hidden_degrees(size: int, low: int, dim: int, generator: torch.Generator | None = None) -> Tensor:
    """Degrees of a hidden layer of ``size`` units, uniform on ``{low, ..., D-1}``.

    MADE draws ``m^l(k)`` uniformly between the smallest degree of the layer below and D-1,
    so that no unit is cut off from every input (Germain et al. 2015, section 4). With
    D = 1 there is nothing to condition on; all units get degree 1 (and no output sees them).
    """
    high = max(dim - 1, 1)
    low = min(low, high)
    return torch.randint(low, high + 1, (size,), generator=generator)


def made_degrees(order: Tensor, hidden: tuple[int, ...], generator: torch.Generator | None = None) -> list[Tensor]:
    """Degrees of every layer of a MADE: ``[m(inputs), m^1(hidden 1), ..., m^L(hidden L)]``."""
    dim = order.numel()
    degrees = [input_degrees(order)]
    for size in hidden:
        degrees.append(hidden_degrees(size, int(degrees[-1].min()), dim, generator))
    return degrees


# ----- masks from degrees -----------------------------------------------------------------------


def hidden_mask(degrees_in: Tensor, degrees_out: Tensor) -> Tensor:
    """Mask into a hidden layer: ``M[k, j] = 1[m_out(k) >= m_in(j)]`` (MADE eq. 12).

    Shape ``(len(degrees_out), len(degrees_in))``, boolean.
    """
    return degrees_out[:, None] >= degrees_in[None, :]


def output_mask(degrees_in: Tensor, degrees_out: Tensor) -> Tensor:
    """Mask into the output layer: ``M[d, k] = 1[m(d) > m_in(k)]`` (MADE eq. 13, strict).

    ``degrees_out`` are the input degrees of the dimensions the outputs predict. With
    ``degrees_in`` the input degrees too this is the direct input-to-output mask: strictly
    lower triangular in the ordering (the FVSBN connectivity). Shape
    ``(len(degrees_out), len(degrees_in))``, boolean.
    """
    return degrees_out[:, None] > degrees_in[None, :]


def made_masks(degrees: list[Tensor]) -> list[Tensor]:
    """The masks of every layer of a MADE from its degrees (as made by :func:`made_degrees`).

    Returns ``[M^1, ..., M^L, M^out]``: one hidden mask per hidden layer and the output mask,
    which has one row per data dimension (repeat rows for several outputs per dimension).
    """
    masks = [hidden_mask(d_in, d_out) for d_in, d_out in zip(degrees[:-1], degrees[1:], strict=True)]
    masks.append(output_mask(degrees[-1], degrees[0]))
    return masks
