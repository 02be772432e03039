"""Evaluation: metrics that make any two models comparable on the same data.

:func:`evaluate` computes the metric groups of :data:`GROUPS` that apply to a model on its data.
"""

from dgm.eval.likelihood import likelihood_metrics, nats_to_bits_per_dim
from dgm.eval.suite import GROUPS, evaluate, parse_metrics, quick_groups

__all__ = ["GROUPS", "evaluate", "likelihood_metrics", "nats_to_bits_per_dim", "parse_metrics", "quick_groups"]
