"""Baselines: the simplest models, against which every other model is measured."""

from dgm.models.baseline import gmm, independent  # noqa: F401
