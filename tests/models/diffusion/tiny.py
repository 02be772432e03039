"""Tiny ddpm models for tests: sizes, and random non-zero weights (the UNet's output starts at 0)."""

from __future__ import annotations

import torch

TINY_IMAGE = {"steps": 20, "channels": 8, "mults": (1, 2), "heads": 1}
TINY_VECTOR = {"steps": 20, "hidden": 16, "layers": 1, "time_dim": 8}


def perturbed(model):
    """``model`` in eval mode with 0.1 N(0, 1) added to every weight (seeded)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()
