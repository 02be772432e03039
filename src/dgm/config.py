"""Typed, frozen configuration dataclasses: strict reading, writing and command-line overrides.

A config is a frozen dataclass. :func:`to_dict` turns one into JSON-ready values;
:func:`from_dict` reads one back and refuses unknown keys and wrong types with an error that
names the key; :func:`parse_value` turns a command-line string (``--set hidden=512,512``) into
the field's declared type.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from dgm.errors import ConfigError

C = TypeVar("C")


def field_types(cls) -> dict[str, Any]:
    """The resolved type of every field of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def to_dict(config) -> dict[str, Any]:
    """JSON-ready dict of a (possibly nested) config dataclass; tuples become lists."""

    def plain(v):
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(config)


def _type_name(tp) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def check_value(key: str, value: Any, tp) -> Any:
    """Return ``value`` converted to type ``tp`` (lists to tuples, ints to floats), or raise.

    Raises :class:`ConfigError` naming ``key`` and the expected type when ``value`` does not fit.
    """
    origin = get_origin(tp)
    bad = ConfigError(f"config key '{key}' expects {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        for arm in get_args(tp):
            try:
                return check_value(key, value, arm)
            except ConfigError:
                continue
        raise bad
    if tp is type(None):
        if value is None:
            return None
        raise bad
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise bad
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(key, v, args[0]) for v in value)
        if len(args) != len(value):
            raise bad
        return tuple(check_value(key, v, a) for v, a in zip(value, args, strict=True))
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return from_dict(tp, value, prefix=f"{key}.")
        raise bad
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    raise bad


def from_dict(cls: type[C], values: dict[str, Any], prefix: str = "") -> C:
    """Build dataclass ``cls`` from ``values``, refusing unknown keys and wrong types."""
    types_ = field_types(cls)
    unknown = sorted(set(values) - set(types_))
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}' for {cls.__name__}; valid keys: {', '.join(sorted(types_))}"
        )
    kwargs = {k: check_value(prefix + k, v, types_[k]) for k, v in values.items()}
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ConfigError(f"{cls.__name__}: {e}") from None


def parse_value(key: str, text: str, tp) -> Any:
    """Parse the command-line string ``text`` as a value of type ``tp`` for config key ``key``.

    Accepts JSON/YAML-style scalars (``3``, ``1e-3``, ``true``, ``null``) and, for tuple fields,
    comma-separated items (``512,512``) or a JSON list.
    """
    origin = get_origin(tp)
    arms = get_args(tp) if origin in (Union, types.UnionType) else (tp,)
    if any(get_origin(a) is tuple for a in arms) and not text.strip().startswith("["):
        items = [s for s in (p.strip() for p in text.split(",")) if s]
        value: Any = [_scalar(s) for s in items]
    else:
        value = _scalar(text)
    return check_value(key, value, tp)


def _scalar(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """Split ``["key=value", ...]`` into a dict of strings, naming a malformed pair."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r} (example: --set hidden=512,512)")
        out[key.strip()] = value
    return out


def override(config: C, values: dict[str, Any]) -> C:
    """A copy of ``config`` with ``values`` applied; string values are parsed to the field type."""
    types_ = field_types(type(config))
    current = to_dict(config)
    for key, value in values.items():
        if key not in types_:
            raise ConfigError(
                f"unknown config key '{key}' for {type(config).__name__}; valid keys: {', '.join(sorted(types_))}"
            )
        from_text = isinstance(value, str) and types_[key] is not str  # a command-line string
        current[key] = parse_value(key, value, types_[key]) if from_text else value
    return from_dict(type(config), current)
