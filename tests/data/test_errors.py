"""Bad input: each case raises a one-line DataError that names the problem."""

from __future__ import annotations

import numpy as np
import pytest

from dgm.data import list_datasets, load_dataset
from dgm.data.spec import parse_spec
from dgm.errors import DataError


def _npz(tmp_path, name="d.npz", **arrays) -> str:
    np.savez(tmp_path / name, **arrays)
    return f"npz:{tmp_path / name}"


def _raises(spec: str, message: str, **kwargs) -> DataError:
    with pytest.raises(DataError, match=message) as info:
        load_dataset(spec, **kwargs)
    assert "\n" not in str(info.value)
    return info.value


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cifar10", r"unknown dataset 'cifar10'; known: digits, mnist5k, toy2d:gmm8, .*npz:PATH"),
        ("gmm8", "did you mean toy2d:gmm8"),
        ("/data/x.npz", "did you mean npz:/data/x.npz"),
        ("toy2d:gmm9", "unknown toy2d dataset 'gmm9'; known: gmm8, grid25, checkerboard"),
        ("toy2d", "toy2d needs a name"),
        ("digits:extra", "takes no ':' argument"),
        ("npz:", "names no file"),
        ("npz:/no/such/file.npz", "file not found: /no/such/file.npz"),
        ("toy2d:gmm8?m=5", "unknown option 'm' .* options for 'toy2d' are: n, n_test, n_val"),
        ("mnist5k?n=5", "unknown option 'n' .* options for 'mnist5k' are: none"),
        ("toy2d:gmm8?n=abc", r"option n='abc' .* must be an integer >= 1"),
        ("toy2d:gmm8?n", r"bad option 'n' .* \?key=value"),
        ("", "non-empty string"),
    ],
)
def test_bad_specs(spec, message):
    _raises(spec, message)


def test_corrupt_npz_is_caught_without_chained_traceback(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    err = _raises(f"npz:{tmp_path / 'bad.npz'}", r"cannot read .*bad.npz as \.npz")
    assert err.__cause__ is None and err.__suppress_context__


def test_folder_given_to_a_file_kind(tmp_path):
    _raises(f"npz:{tmp_path}", "is a folder, not a file")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.arange(10.0)}, r"array 'x' .* has shape \(10,\); give one example per row"),
        ({"x": np.zeros((12, 1, 1, 1, 1))}, r"has shape \(12, 1, 1, 1, 1\)"),
        ({"x": np.zeros((0, 3))}, "is empty"),
        ({"x": np.array([[1.0, np.nan]] * 12)}, "contains 12 NaN or infinite values"),
        ({"x": np.array([[1.0, np.inf]] * 12)}, "NaN or infinite"),
        ({"x": np.array([["a", "b"]] * 12)}, "must hold numbers"),
        ({"x": np.zeros((12, 2)), "y": np.zeros(5)}, "has 5 labels but the data has 12 examples"),
        ({"x": np.zeros((12, 2)), "y": np.zeros((12, 3))}, r"labels must be one value per example"),
        ({"a": np.zeros((12, 2))}, r"has no array 'x' \(nor 'x_train' and 'x_test'\); arrays in the file: a"),
        ({"x": np.zeros((5, 2))}, "5 examples, too few to split 80/10/10"),
        (
            {"x_train": np.zeros((12, 2)), "y_train": np.zeros(12), "x_test": np.zeros((3, 2))},
            "labels for some splits but not y_test",
        ),
        ({"x_train": np.zeros((12, 2)), "x_test": np.zeros((3, 4))}, "different example shapes"),
    ],
)
def test_bad_npz_contents(tmp_path, arrays, message):
    _raises(_npz(tmp_path, **arrays), message)


def test_classes_filter_matching_nothing(tmp_path):
    y = np.array([0, 2] * 10)
    spec = _npz(tmp_path, x=np.random.default_rng(0).random((20, 2)), y=y)
    assert load_dataset(spec).raw_info.num_classes == 3
    _raises(spec, "classes \\[1\\] match no example of the 'train' split", classes=[1])
    _raises(spec, "class 3 does not exist; this data has classes 0..2", classes="3")


def test_bad_split_name():
    with pytest.raises(DataError, match="unknown split 'training'; use one of train, val, test"):
        load_dataset("digits").split("training")


def test_parse_spec_keeps_text_and_options():
    spec = parse_spec("npz:/p/x.npz?label=y&levels=4")
    assert (spec.kind, spec.arg, spec.options) == ("npz", "/p/x.npz", {"label": "y", "levels": "4"})
    assert load_dataset("toy2d:gmm8?n=100").spec == "toy2d:gmm8?n=100"
    with pytest.raises(DataError, match="option 'n' is given twice"):
        parse_spec("toy2d:gmm8?n=1&n=2")


def test_list_datasets_covers_every_kind():
    rows = list_datasets()
    specs = {r["spec"] for r in rows}
    assert {
        "digits",
        "mnist5k",
        "toy2d:gmm8",
        "toy2d:checkerboard",
        "npz:PATH",
        "idx:PATH",
        "folder:PATH",
        "csv:PATH",
    } <= specs
    assert all(set(r) == {"spec", "summary", "density"} and r["summary"] for r in rows)
    density = {r["spec"]: r["density"] for r in rows}
    assert density["toy2d:rings"] == "exact" and density["toy2d:moons"] == "none"
    assert density["mnist5k"] == "none"
