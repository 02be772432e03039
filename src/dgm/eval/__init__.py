"""Evaluation: metrics that make any two models comparable on the same data."""

from dgm.eval.likelihood import likelihood_metrics, nats_to_bits_per_dim

__all__ = ["evaluate", "likelihood_metrics", "nats_to_bits_per_dim"]


def evaluate(model, dataset, split: str = "test", seed: int = 0) -> dict:
    """Every metric that applies to ``model`` on ``dataset`` (each with its value, unit and meaning)."""
    return likelihood_metrics(model, dataset, split=split, seed=seed)
