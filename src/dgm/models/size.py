"""How big a model would be, known before any weight is allocated.

A model is built once on PyTorch's meta device, where tensors have shapes but no memory, and
its parameters are counted; an oversized one is refused with a :class:`ConfigError` that says
how to shrink it, before a real build could take gigabytes and sampling hours.

>>> from dgm.data.info import DataInfo
>>> from dgm.registry import get, make_config
>>> config = make_config("made", DataInfo((3, 16, 16), "discrete", 256), output="categorical")  # 16x16 RGB
>>> check_model_size(get("made"), config, limit=50_000_000)
Traceback (most recent call last):
dgm.errors.ConfigError: model 'made' would have 348,568,552 parameters, over the limit of 50,000,000; ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from dgm.errors import ConfigError, DgmError
from dgm.train.config import TrainConfig

if TYPE_CHECKING:
    from dgm.models.base import GenerativeModel, ModelConfig

# Default limit (TrainConfig.max_parameters): 200 MB of float32 weights, 800 MB with Adam's two
# moments and the gradients; the defaults of every model on every built-in dataset stay far below it.
MAX_PARAMETERS = TrainConfig.max_parameters
RAISE_LIMIT = "--set train.max_parameters=N"  # how a command-line user raises the limit


def count_parameters(cls: type[GenerativeModel], config: ModelConfig) -> int | None:
    """Number of parameters of ``cls(config)``, counted on the meta device without allocating
    them; None when the model cannot be built there. Errors in the config (a DgmError) are
    raised as the real build would raise them."""
    try:
        with torch.device("meta"):
            model = cls(config)
    except DgmError:
        raise
    except Exception:  # an operation without a meta kernel: the size stays unknown
        return None
    return sum(p.numel() for p in model.parameters())


def check_model_size(
    cls: type[GenerativeModel], config: ModelConfig, limit: int = MAX_PARAMETERS, raise_limit: str = RAISE_LIMIT
) -> int | None:
    """Refuse a model of more than ``limit`` parameters before it is built, with a ConfigError
    giving the count, the limit, the model's :meth:`~GenerativeModel.shrink_hints` and
    ``raise_limit``, the option that raises the limit. Returns the count (None when unknown,
    see :func:`count_parameters`; such a model is not checked)."""
    count = count_parameters(cls, config)
    if count is not None and count > limit:
        fixes = [*cls.shrink_hints(config), f"raise the limit with {raise_limit}"]
        raise ConfigError(
            f"model '{cls.name}' would have {count:,} parameters, over the limit of {limit:,}; "
            f"{', '.join(fixes[:-1])}, or {fixes[-1]}"
        )
    return count
