"""Completion: the named keep masks, prefix detection, prompts, and completions that keep the
given part exactly while drawing the rest."""

from __future__ import annotations

import pytest
import torch

import dgm
from dgm.apps.complete import complete, is_prefix, keep_mask, prefix_input, prompt_levels, require_autoregressive
from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError

IMAGE = DataInfo((1, 4, 6), "binary", 2)
RGB = DataInfo((3, 4, 4), "discrete", 256)
SEQ = DataInfo((10,), "discrete", 3, vocab="abc")


def test_top_half_keeps_the_top_rows_of_every_channel():
    keep = keep_mask("top-half", RGB)
    assert keep[:, :2].all() and not keep[:, 2:].any()
    assert is_prefix(keep, RGB)


def test_top_rows_and_left_half():
    assert keep_mask("top:3", IMAGE).sum() == 18
    left = keep_mask("left-half", IMAGE)
    assert left[..., :3].all() and not left[..., 3:].any()
    assert not is_prefix(left, IMAGE)


def test_sequence_masks_keep_the_first_elements():
    assert keep_mask("first-half", SEQ).tolist() == [True] * 5 + [False] * 5
    assert keep_mask("first:2", SEQ).sum() == 2 and is_prefix(keep_mask("first:2", SEQ), SEQ)


def test_a_pixel_with_only_some_channels_kept_is_not_a_prefix():
    keep = torch.zeros(RGB.shape, dtype=torch.bool)
    keep[0, 0, 0] = True
    assert not is_prefix(keep, RGB)


@pytest.mark.parametrize(
    ("spec", "info", "needle"),
    [
        ("top:0", IMAGE, "1..3"),
        ("top:4", IMAGE, "1..3"),
        ("top:x", IMAGE, "integer"),
        ("first-half", IMAGE, "top-half"),
        ("top-half", SEQ, "first-half"),
        ("first:10", SEQ, "1..9"),
    ],
)
def test_bad_keep_masks_name_the_choices(spec, info, needle):
    with pytest.raises(ConfigError, match=needle):
        keep_mask(spec, info)


def test_prompts_map_characters_to_levels_and_name_unknown_ones():
    assert prompt_levels("cab", "abc").tolist() == [2.0, 0.0, 1.0]
    with pytest.raises(DataError, match="'z'"):
        prompt_levels("abz", "abc")
    x, keep = prefix_input(torch.tensor([2.0, 1.0]), SEQ)
    assert x[0, :2].tolist() == [2.0, 1.0] and keep.sum() == 2
    with pytest.raises(DataError, match="1..9"):
        prefix_input(torch.zeros(10), SEQ)


def test_completions_keep_the_given_part_and_differ_elsewhere():
    torch.manual_seed(0)
    model = dgm.build("fvsbn", data=IMAGE)
    with torch.no_grad():
        model.weight.normal_()
    x = torch.randint(0, 2, (3, *IMAGE.shape)).float()
    keep = keep_mask("top-half", IMAGE)
    done = complete(model, x, keep, k=5, seed=1)
    assert done.samples.shape == (3, 5, *IMAGE.shape) and done.exact
    given = done.samples[:, :, keep]  # (3, 5, kept)
    assert torch.equal(given, x[:, keep].unsqueeze(1).expand_as(given))
    rest = done.samples[:, :, ~keep]
    assert (rest != rest[:, :1]).any()  # the completions are draws, not copies
    again = complete(model, x, keep, k=5, seed=1).samples
    assert torch.equal(again, done.samples)


def test_completion_needs_an_autoregressive_model():
    model = dgm.build("independent", data=IMAGE)
    with pytest.raises(ConfigError, match="autoregressive"):
        require_autoregressive(model)
