"""Model registry: ``@register`` on a model class, ``build(name, data=..., **overrides)`` to make one.

>>> import dgm
>>> model = dgm.build("made", data=dgm.DataInfo((1, 28, 28), "binary"), hidden=(256,))
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from dgm.config import from_dict, override, to_dict
from dgm.errors import ConfigError

if TYPE_CHECKING:
    from dgm.data.info import DataInfo
    from dgm.models.base import GenerativeModel

_MODELS: dict[str, type[GenerativeModel]] = {}


def register(name: str):
    """Class decorator that registers a :class:`GenerativeModel` subclass under ``name``."""

    def deco(cls):
        if name in _MODELS and _MODELS[name] is not cls:
            raise RuntimeError(f"model name {name!r} is registered twice")
        cls.name = name
        _MODELS[name] = cls
        return cls

    return deco


def _load_all() -> None:
    import dgm.models  # noqa: F401  (importing the package registers every model)


def get(name: str) -> type[GenerativeModel]:
    """The model class registered as ``name``; the error lists the known names."""
    _load_all()
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def list_models() -> list[dict[str, Any]]:
    """Every registered model with its family and declared capabilities, sorted by family."""
    _load_all()
    rows = [cls.capabilities() for cls in _MODELS.values()]
    return sorted(rows, key=lambda r: (r["family"], r["name"]))


def data_info_of(data) -> DataInfo:
    """A :class:`DataInfo` from a DataInfo, a loaded dataset (``.info``) or its dict form."""
    from dgm.data.info import DataInfo

    if isinstance(data, DataInfo):
        return data
    if isinstance(data, dict):
        return from_dict(DataInfo, data)
    info = getattr(data, "info", None)
    if isinstance(info, DataInfo):
        return info
    raise ConfigError(f"data= expects a DataInfo or a dataset from dgm.load_dataset, got {type(data).__name__}")


def make_config(name: str, data, **overrides):
    """The config of model ``name`` for ``data`` with ``overrides`` (values or CLI strings)."""
    cls = get(name)
    config = cls.Config(data=data_info_of(data))
    return override(config, overrides) if overrides else config


def build(name: str, data, *, max_parameters: int | None = None, **overrides) -> GenerativeModel:
    """Build the model registered as ``name`` for ``data``, with config fields overridden.

    ``dgm.build("made", data=ds, hidden=(512,))`` is ``MADE(MADEConfig(data=ds.info, hidden=(512,)))``,
    once the model is known to have at most ``max_parameters`` parameters (default
    :data:`dgm.models.size.MAX_PARAMETERS`); a bigger one is refused (ConfigError) before
    its weights are allocated.
    """
    from dgm.models.size import MAX_PARAMETERS, check_model_size  # late: dgm.models imports this module

    cls, config = get(name), make_config(name, data, **overrides)
    limit = MAX_PARAMETERS if max_parameters is None else max_parameters
    check_model_size(cls, config, limit, raise_limit="dgm.build(..., max_parameters=N)")
    return cls(config)


def build_from_dict(name: str, config: dict[str, Any]) -> GenerativeModel:
    """Rebuild a model from its saved name and ``to_dict(config)`` (as in a run's config.json)."""
    cls = get(name)
    return cls(from_dict(cls.Config, cls.upgrade_config(config)))


def config_dict(model: GenerativeModel) -> dict[str, Any]:
    """The JSON-ready config of ``model``."""
    assert dataclasses.is_dataclass(model.config)
    return to_dict(model.config)
