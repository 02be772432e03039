from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from dgm.config import from_dict, override, parse_assignments, to_dict
from dgm.data.info import DataInfo
from dgm.errors import ConfigError


@dataclass(frozen=True)
class Example:
    data: DataInfo
    hidden: tuple[int, ...] = (8, 8)
    lr: float = 1e-3
    order: Literal["natural", "random"] = "natural"
    clip: float | None = None
    flag: bool = False
    name: str = "x"


INFO = DataInfo((1, 4, 4), "binary", 2, 10)


def test_round_trip_through_dict():
    cfg = Example(INFO, hidden=(3, 5), clip=0.5, flag=True)
    assert from_dict(Example, to_dict(cfg)) == cfg
    assert to_dict(cfg)["hidden"] == [3, 5]
    assert to_dict(cfg)["data"]["shape"] == [1, 4, 4]


def test_command_line_strings_become_typed_values():
    cfg = override(
        Example(INFO),
        {"hidden": "512,256", "lr": "3e-4", "order": "random", "clip": "none", "flag": "true", "name": "abc"},
    )
    assert cfg.hidden == (512, 256) and cfg.lr == 3e-4 and cfg.order == "random"
    assert cfg.clip is None and cfg.flag is True and cfg.name == "abc"
    assert override(cfg, {"hidden": "[7]"}).hidden == (7,)
    assert override(cfg, {"lr": 1}).lr == 1.0  # ints are accepted for floats


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"hiden": "5"}, "unknown config key 'hiden'"),
        ({"hidden": "a,b"}, "config key 'hidden' expects"),
        ({"lr": "fast"}, "config key 'lr' expects float"),
        ({"order": "sideways"}, "'natural' | 'random'"),
        ({"flag": "3"}, "config key 'flag' expects bool"),
    ],
)
def test_bad_overrides_name_the_key(values, needle):
    with pytest.raises(ConfigError, match=needle.replace("|", r"\|").replace("(", r"\(")):
        override(Example(INFO), values)


def test_unknown_key_error_lists_valid_keys():
    with pytest.raises(ConfigError) as err:
        from_dict(Example, {"data": to_dict(INFO), "widht": 3})
    assert "widht" in str(err.value) and "hidden" in str(err.value)


def test_nested_dataclass_type_errors_are_prefixed():
    bad = to_dict(INFO) | {"support": "fuzzy"}
    with pytest.raises(ConfigError, match="data.support"):
        from_dict(Example, {"data": bad})


def test_assignments_need_an_equals_sign():
    assert parse_assignments(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignments(["hidden"])
