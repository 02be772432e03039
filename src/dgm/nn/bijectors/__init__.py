"""Bijectors: invertible maps with exact log-determinants, the blocks of normalizing flows.

One direction everywhere: ``forward(x, cond) -> (z, ladj)`` maps data to base,
``inverse(z, cond) -> (x, ladj)`` maps back (see :mod:`dgm.nn.bijectors.base`).

>>> import torch
>>> from dgm.nn.bijectors import AffineCoupling, Compose, MLPConditioner, Reverse, vector_mask
>>> flow = Compose([AffineCoupling(vector_mask(4, p), lambda k: MLPConditioner(4, k)) for p in (0, 1)])
>>> z, ladj = flow(torch.randn(8, 4))
>>> x, _ = flow.inverse(z)
"""

from dgm.nn.bijectors.autoregressive import MADEConditioner, MaskedAffineAutoregressive, make_order
from dgm.nn.bijectors.base import Bijector, Compose, Inverse, jacobian_ladj, sum_except_batch
from dgm.nn.bijectors.coupling import (
    AdditiveCoupling,
    AffineCoupling,
    ConvConditioner,
    Coupling,
    MLPConditioner,
    channel_mask,
    checkerboard_mask,
    soft_clamp,
    vector_mask,
)
from dgm.nn.bijectors.elementwise import ActNorm, ElementwiseAffine
from dgm.nn.bijectors.linear import InvConv1x1, LULinear, RandomPermutation, Reverse
from dgm.nn.bijectors.logit import Log, Logit
from dgm.nn.bijectors.planar import Planar, Radial
from dgm.nn.bijectors.reshape import MultiScale, Squeeze, squeeze, unsqueeze
from dgm.nn.bijectors.spline import AutoregressiveSpline, ElementwiseSpline, SplineCoupling, rq_spline

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "AutoregressiveSpline",
    "Bijector",
    "Compose",
    "ConvConditioner",
    "Coupling",
    "ElementwiseAffine",
    "ElementwiseSpline",
    "InvConv1x1",
    "Inverse",
    "LULinear",
    "Log",
    "Logit",
    "MADEConditioner",
    "MLPConditioner",
    "MaskedAffineAutoregressive",
    "MultiScale",
    "Planar",
    "Radial",
    "RandomPermutation",
    "Reverse",
    "SplineCoupling",
    "Squeeze",
    "channel_mask",
    "checkerboard_mask",
    "jacobian_ladj",
    "make_order",
    "rq_spline",
    "soft_clamp",
    "squeeze",
    "sum_except_batch",
    "unsqueeze",
    "vector_mask",
]
