"""Model sizes are known before the weights exist, and oversized models are refused with the fix."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

import dgm
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError
from dgm.models.autoregressive.made import MADE
from dgm.models.base import GenerativeModel, ModelConfig
from dgm.models.size import MAX_PARAMETERS, check_model_size, count_parameters
from dgm.registry import get, make_config
from tests.models.test_conformance import CASES, IDS, INFOS, TINY, info_for

RGB16 = DataInfo((3, 16, 16), "discrete", 256)  # a folder of 16x16 RGB 8-bit images
RGB16_MADE_PARAMETERS = 348_568_552  # 768 -> 1000 -> 768 * 256 logits, plus 768 x 768 * 256 direct


def real_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name, support, conditional", CASES, ids=IDS)
def test_meta_count_equals_the_real_count(name, support, conditional):
    config = make_config(name, info_for(name, INFOS[support]), conditional=conditional, **TINY[name])
    assert count_parameters(get(name), config) == real_count(get(name)(config))


def test_meta_count_of_the_default_made_on_mnist():
    config = make_config("made", DataInfo((1, 28, 28), "binary", 2, 10))
    assert count_parameters(MADE, config) == real_count(MADE(config)) == 2_184_440  # as in the README


def test_oversized_made_is_refused_without_being_built(monkeypatch):
    devices = []
    init = MADE.__init__

    def recording_init(self, config):
        devices.append(torch.get_default_device())
        init(self, config)

    monkeypatch.setattr(MADE, "__init__", recording_init)
    with pytest.raises(ConfigError) as err:
        dgm.build("made", data=RGB16, output="categorical")
    assert devices == [torch.device("meta")]  # only ever built where tensors have no memory
    assert str(err.value) == (
        f"model 'made' would have {RGB16_MADE_PARAMETERS:,} parameters, over the limit of 50,000,000; "
        "shrink it with --set hidden=... (now 1000), "
        "drop the direct connections with --set direct=false (150,994,944 parameters), "
        "binarize the data with --transform binarize (1 logit per dimension instead of 256), "
        "or raise the limit with dgm.build(..., max_parameters=N)"
    )


def test_a_model_built_on_meta_holds_no_memory():
    with torch.device("meta"):
        model = MADE(make_config("made", RGB16, output="categorical"))
    tensors = [*model.parameters(), *model.buffers()]
    assert tensors and all(t.is_meta for t in tensors)  # the (8, 196608, 1000) masks included
    assert real_count(model) == RGB16_MADE_PARAMETERS


def test_check_names_the_command_line_option_by_default_and_returns_the_count():
    config = make_config("made", RGB16, hidden=(8,), direct=False, output="categorical")
    count = check_model_size(MADE, config)
    assert count == real_count(MADE(config)) < MAX_PARAMETERS
    with pytest.raises(
        ConfigError, match=r"over the limit of 1,000; .*raise the limit with --set train.max_parameters=N$"
    ):
        check_model_size(MADE, config, limit=1000)


def test_limit_is_inclusive_and_can_be_raised():
    info = DataInfo((1, 4, 4), "binary")
    count = count_parameters(MADE, make_config("made", info, hidden=(8,)))
    assert real_count(dgm.build("made", data=info, hidden=(8,), max_parameters=count)) == count
    with pytest.raises(ConfigError, match=f"would have {count:,} parameters, over the limit of {count - 1:,}"):
        dgm.build("made", data=info, hidden=(8,), max_parameters=count - 1)
    big = make_config("made", RGB16, output="categorical")
    assert check_model_size(MADE, big, limit=RGB16_MADE_PARAMETERS) == RGB16_MADE_PARAMETERS


def test_building_on_meta_leaves_the_global_random_state_alone():
    info = DataInfo((1, 4, 4), "discrete", 4)
    torch.manual_seed(0)
    built = dgm.build("made", data=info, hidden=(8,))
    torch.manual_seed(0)
    direct = MADE(make_config("made", info, hidden=(8,)))
    for a, b in zip(built.parameters(), direct.parameters(), strict=True):
        assert torch.equal(a, b)


class NoMeta:
    """A model that cannot be built on the meta device (it reads a value)."""

    name = "nometa"

    def __init__(self, config):
        self.scale = torch.ones(2).sum().item()


class BadConfig(NoMeta):
    def __init__(self, config):
        raise DataError("bad data")


def test_models_that_cannot_be_built_on_meta_are_not_checked():
    assert count_parameters(NoMeta, None) is None
    assert check_model_size(NoMeta, None, limit=0) is None
    with pytest.raises(DataError, match="bad data"):  # an error in the config is the real build's error
        count_parameters(BadConfig, None)


@dataclass(frozen=True)
class SizedConfig(ModelConfig):
    hidden: tuple[int, ...] = (64,)
    latent_dim: int = 8
    num_steps: int = 1000  # not a size: sampling steps
    seed: int = 0


def test_default_shrink_hints_name_the_size_fields_or_else_the_data():
    info = DataInfo((4,), "continuous")
    assert GenerativeModel.shrink_hints(SizedConfig(info)) == (
        "shrink it with --set hidden=... or --set latent_dim=...",
    )
    (hint,) = get("fvsbn").shrink_hints(make_config("fvsbn", DataInfo((1, 8, 8), "binary")))
    assert hint.startswith("give it data of fewer dimensions")


def test_made_shrink_hints_follow_its_config():
    binary = make_config("made", DataInfo((1, 8, 8), "binary"), hidden=(32, 16), direct=False)
    assert MADE.shrink_hints(binary) == ("shrink it with --set hidden=... (now 32,16)",)
    hints = MADE.shrink_hints(make_config("made", DataInfo((5,), "discrete", 17)))
    assert [h.split(" with ")[0] for h in hints] == ["shrink it", "drop the direct connections", "binarize the data"]
    assert "(425 parameters)" in hints[1]  # 5 x 5 x 17
