"""``dgm complete`` on saved (untrained) runs: a picture for images, a text file for text, and a
one-line error for every bad input, with nothing written."""

from __future__ import annotations

import numpy as np
import pytest

import dgm
from dgm.registry import config_dict
from dgm.runs import RunRecord, save_weights, write_record
from tests.conftest import assert_one_line_error, invoke

PNG = b"\x89PNG\r\n\x1a\n"


def save_run(run, name: str, spec: str, transforms: list[str], **config):
    run.mkdir()
    ds = dgm.load_dataset(spec, transforms=transforms)
    model = dgm.build(name, data=ds, **config)
    write_record(run, RunRecord(name, config_dict(model), {"spec": spec, "transforms": transforms}))
    save_weights(run, model)
    return run


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("complete") / "gated"
    return save_run(run, "gated_pixelcnn", "digits", ["binarize"], channels=4, layers=2, features=4)


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("complete")
    book = root / "book.txt"
    book.write_text("the cat sat on the mat. " * 40)
    return save_run(root / "transformer", "transformer", f"text:{book}?length=16", [], width=8, layers=1, heads=1)


def test_image_completions_are_a_picture_in_the_run(image_run):
    result = invoke(["complete", str(image_run), "-n", "3", "--examples", "2"])
    assert result.exit_code == 0, result.output
    path = image_run / "completions.png"
    assert str(path) in result.stdout and path.read_bytes()[:8] == PNG
    assert "note:" not in result.stdout  # the top half comes first in raster order


def test_a_non_prefix_mask_says_so(image_run, tmp_path):
    out = tmp_path / "left.png"
    result = invoke(["complete", str(image_run), "--keep", "left-half", "--examples", "1", "--out", str(out)])
    assert result.exit_code == 0 and out.is_file()
    assert "does not come first" in result.stdout


def test_an_npy_input_is_completed(image_run, tmp_path):
    array = tmp_path / "x.npy"
    np.save(array, np.full((1, 8, 8), 16.0))
    out = tmp_path / "npy.png"
    result = invoke(["complete", str(image_run), "--input", str(array), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == PNG


def test_a_text_prompt_is_kept_at_the_start_of_every_completion(text_run):
    result = invoke(["complete", str(text_run), "--prompt", "the ", "-n", "2"])
    assert result.exit_code == 0, result.output
    text = (text_run / "completions.txt").read_text()
    blocks = [b for b in text.split("-----") if b.strip() and "given" not in b and "completion" not in b]
    assert blocks[0].strip() == "the"
    completions = [b.strip("\n") for b in blocks[1:]]
    assert len(completions) == 2 and all(c.startswith("the ") and len(c) == 16 for c in completions)
    assert set("".join(completions)) <= set("the cat sat on the mat. ")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--keep", "bottom"], "--keep must be one of top-half"),
        (["--keep", "top:9"], "1..7"),
        (["-n", "0"], "-n (completions per input) must be at least 1"),
        (["--examples", "0"], "--examples must be at least 1"),
        (["--out", "x.txt"], "--out must end in .png"),
        (["--prompt", "hello"], "needs a run on text: data"),
        (["--cond", "3"], "not conditional"),
        (["--temperature", "-1"], "temperature must be a number >= 0"),
        (["--split", "nope"], "unknown split"),
    ],
)
def test_bad_options_are_one_line_errors(image_run, args, needle):
    before = set(image_run.iterdir())
    assert_one_line_error(invoke(["complete", str(image_run), *args]), needle)
    assert set(image_run.iterdir()) == before


def test_text_prompt_errors(text_run):
    assert_one_line_error(invoke(["complete", str(text_run), "--prompt", "dog"]), "'d'")
    assert_one_line_error(invoke(["complete", str(text_run), "--prompt", "the cat sat on the"]), "1..15")
    assert_one_line_error(
        invoke(["complete", str(text_run), "--prompt", "the", "--keep", "first:2"]), "--keep does not"
    )


def test_a_model_that_cannot_complete_is_named(tmp_path):
    run = save_run(tmp_path / "vae", "vae", "digits", ["binarize"], latent_dim=2, hidden=(8,))
    assert_one_line_error(invoke(["complete", str(run)]), "completion needs an autoregressive model")


def test_a_prompt_needs_no_data_file(text_run, tmp_path):
    import json
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(text_run, moved)
    record = json.loads((moved / "config.json").read_text())
    record["data"]["spec"] = f"text:{tmp_path / 'gone.txt'}?length=16"  # the text file is gone
    (moved / "config.json").write_text(json.dumps(record))
    result = invoke(["complete", str(moved), "--prompt", "the ", "-n", "1"])
    assert result.exit_code == 0, result.output
    assert (moved / "completions.txt").read_text().count("the ") >= 1
