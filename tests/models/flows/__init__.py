"""Shared set-up of the normalizing-flow tests: small presets of every flow, random parameters."""

from __future__ import annotations

import torch

import dgm
from dgm.data.info import DataInfo
from dgm.models.flows.base import FlowModel

# Small versions of every flow (and both kinds of NSF); image models get one level on 4x4 images.
PRESETS: dict[str, tuple[str, dict]] = {
    "nice": ("nice", {"layers": 3, "hidden": (16,)}),
    "realnvp": ("realnvp", {"layers": 3, "hidden": (16,), "couplings": 2, "channels": 8, "levels": 1}),
    "glow": ("glow", {"depth": 2, "hidden": (16,), "channels": 8, "levels": 1}),
    "maf": ("maf", {"layers": 3, "hidden": (16,)}),
    "iaf": ("iaf", {"layers": 3, "hidden": (16,)}),
    "nsf": ("nsf", {"layers": 3, "hidden": (16, 16), "bins": 4}),  # two layers: the residual path is used
    "nsf-ar-lu": ("nsf", {"kind": "autoregressive", "layers": 3, "hidden": (16,), "bins": 4, "lu": True}),
}
# Noise added to the parameters: large enough that no layer is near the identity, small enough that
# the splines' bins keep slopes whose inverse stays accurate (random slopes near the minimum 1e-3
# amplify rounding by 1e3 per layer; the MADE conditioners of NSF-AR start random already).
NOISE = {"nsf-ar-lu": 0.1}
SHAPES = {"vector": (3,), "image": (1, 4, 4)}
NUM_CLASSES = 3


def make_flow(
    preset: str,
    shape: tuple[int, ...] = (3,),
    conditional: bool = False,
    dtype: torch.dtype = torch.float64,
    scale: float | None = None,
    seed: int = 0,
) -> FlowModel:
    """A flow of ``preset`` in eval mode with noise of std ``scale`` (default ``NOISE`` or 0.2)
    added to every parameter.

    Zero-initialised conditioners and unfitted ActNorms would otherwise make the flow close
    to the identity, and a test on the identity proves nothing.
    """
    name, overrides = PRESETS[preset]
    info = DataInfo(shape, "continuous", num_classes=NUM_CLASSES)
    torch.manual_seed(seed)
    model = dgm.build(name, data=info, conditional=conditional, **overrides).to(dtype)
    scale = NOISE.get(preset, 0.2) if scale is None else scale
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model.eval()


def labels(n: int, conditional: bool, seed: int = 0) -> torch.Tensor | None:
    """``n`` random class labels, or None for an unconditional flow."""
    if not conditional:
        return None
    return torch.randint(0, NUM_CLASSES, (n,), generator=torch.Generator().manual_seed(seed))
