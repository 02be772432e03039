"""Evaluation: metrics that make any two models comparable on the same data.

:func:`evaluate` computes the metric groups of :data:`GROUPS` that apply to a model on its data;
:mod:`dgm.eval.divergences` has KL and JS divergences, exact and by Monte Carlo.
"""

from dgm.eval.divergences import DivergenceEstimate, js_divergence, js_monte_carlo, kl_divergence, kl_monte_carlo
from dgm.eval.likelihood import likelihood_metrics, nats_to_bits_per_dim
from dgm.eval.suite import GROUPS, evaluate, parse_metrics, quick_groups

__all__ = [
    "GROUPS",
    "DivergenceEstimate",
    "evaluate",
    "js_divergence",
    "js_monte_carlo",
    "kl_divergence",
    "kl_monte_carlo",
    "likelihood_metrics",
    "nats_to_bits_per_dim",
    "parse_metrics",
    "quick_groups",
]
