"""Normalizing flows: exact log-likelihood by the change of variables (:mod:`.base`).

NICE, Real NVP and Glow (coupling layers), MAF and IAF (affine autoregressive layers), and the
neural spline flow NSF (rational-quadratic splines, coupling or autoregressive).
"""

from dgm.models.flows import glow, iaf, maf, nice, nsf, realnvp  # noqa: F401
