"""Transforms: log-determinants against autograd, DataInfo mapping, determinism, display."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from dgm.data import DataInfo, load_dataset
from dgm.data.transforms import (
    Binarize,
    Dequantize,
    Logit,
    Scale,
    affine,
    apply_transforms,
    binarize,
    fit_transforms,
    logit,
    logit_inverse,
)
from dgm.errors import DataError


def autograd_ladj(f, x: torch.Tensor) -> torch.Tensor:
    """log|det dy_i/dx_i| per example of the batch map y = f(x), from autograd's Jacobian.

    The Jacobian of the whole batch (N*D, N*D) is taken, so f may draw the same noise for
    the batch on every call; its diagonal D x D blocks are the per-example Jacobians.
    """
    n, d = x.shape[0], x[0].numel()
    jac = jacobian(lambda v: f(v).reshape(-1), x).reshape(n, d, n, d)
    blocks = torch.stack([jac[i, :, i, :] for i in range(n)])  # (N, D, D)
    return torch.linalg.slogdet(blocks)[1]


@pytest.mark.parametrize("alpha", [1e-6, 0.05])
def test_logit_ladj_matches_autograd(alpha):
    x = torch.rand(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    y, ladj = logit(x, alpha)
    assert ladj.shape == (4,) and ladj.dtype == torch.float64
    assert torch.allclose(ladj, autograd_ladj(lambda v: logit(v, alpha)[0], x), atol=1e-8)
    assert torch.allclose(logit_inverse(y, alpha), x, atol=1e-9)


def test_affine_ladj_matches_autograd_per_feature():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 6, dtype=torch.float64, generator=g)
    low = torch.randn(6, dtype=torch.float64, generator=g)
    factor = torch.rand(6, dtype=torch.float64, generator=g) * 3 + 0.1
    _, ladj = affine(x, low, factor, -1.0)
    expected = autograd_ladj(lambda v: affine(v, low, factor, -1.0)[0], x)
    assert torch.allclose(ladj, expected, atol=1e-10)


def _chain(names, info, train_x):
    return fit_transforms(names, info, train_x)[0]


@pytest.mark.parametrize(
    "names",
    [
        ["dequantize"],
        ["dequantize", "scale"],
        ["dequantize", "scale:-1,1"],
        ["dequantize", "scale", "logit"],
        ["dequantize", "scale", "logit:0.05"],
        ["scale"],
    ],
)
def test_chain_ladj_matches_autograd(names):
    info = DataInfo((1, 2, 3), "discrete", levels=17)
    x = torch.randint(0, 17, (3, 1, 2, 3), generator=torch.Generator().manual_seed(2)).double()
    chain = _chain(names, info, x)

    def f(v):  # the same noise for every call, so the map is a fixed function of x
        return apply_transforms(chain, v, torch.Generator().manual_seed(5))[0]

    _, ladj = apply_transforms(chain, x, torch.Generator().manual_seed(5))
    assert torch.allclose(ladj, autograd_ladj(f, x), atol=1e-6)


def test_scale_of_continuous_data_uses_train_range_per_feature():
    train = torch.tensor([[0.0, 10.0], [2.0, 30.0], [1.0, 20.0]])
    chain, info = fit_transforms(["scale:-1,1"], DataInfo((2,), "continuous"), train)
    y, ladj = apply_transforms(chain, train)
    assert torch.allclose(y.amin(0), torch.tensor([-1.0, -1.0])) and torch.allclose(y.amax(0), torch.ones(2))
    assert torch.allclose(ladj, torch.full((3,), math.log(2 / 2) + math.log(2 / 20), dtype=torch.float64))
    assert info == DataInfo((2,), "continuous")
    x = train.double()
    assert torch.allclose(ladj, autograd_ladj(lambda v: apply_transforms(chain, v)[0], x).double(), atol=1e-6)


def test_dequantize_then_scale_ladj_is_minus_d_log_k():
    ds = load_dataset("digits", ["dequantize", "scale"])
    x, ladj = ds.transformed("val", seed=0)
    assert torch.allclose(ladj, torch.full((350,), -64 * math.log(17), dtype=torch.float64))
    assert x.min() >= 0 and x.max() < 1
    assert ds.info == DataInfo((1, 8, 8), "continuous", None, 10)


def test_binarize_threshold_and_info():
    ds = load_dataset("mnist5k", ["binarize"])
    raw = ds.split("test").x
    x, ladj = ds.transformed("test")
    assert torch.equal(x, (raw > 127.5).float())
    assert torch.equal(ladj, torch.zeros(1000, dtype=torch.float64))
    assert ds.info == DataInfo((1, 28, 28), "binary", 2, 10)
    assert torch.equal(binarize(torch.tensor([0.0, 8.0, 8.5, 16.0]), 8.0), torch.tensor([0.0, 0.0, 1.0, 1.0]))


def test_transformed_is_deterministic_given_seed():
    ds = load_dataset("digits", ["binarize:stochastic"])
    a, _ = ds.transformed("train", seed=0)
    b, _ = ds.transformed("train", seed=0)
    c, _ = ds.transformed("train", seed=1)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    # E[y] = x / 16: the empirical mean over pixels tracks it
    raw = ds.split("train").x / 16
    assert abs(float(a.mean() - raw.mean())) < 0.01
    d = load_dataset("digits", ["dequantize"])
    assert torch.equal(d.transformed("test", seed=3)[0], d.transformed("test", seed=3)[0])
    assert torch.equal(torch.floor(d.transformed("test", seed=3)[0]), d.split("test").x)


def test_to_display_inverts_the_chain():
    ds = load_dataset("digits", ["dequantize", "scale", "logit:0.05"])
    shown = ds.to_display(ds.transformed("test")[0])
    expected = ds.split("test").x / 16
    assert shown.shape == (447, 1, 8, 8)
    assert float((shown - expected).abs().mean()) < 1e-3
    flat = ds.to_display(ds.transformed("test")[0].reshape(447, 64))  # flat samples are reshaped
    assert flat.shape == (447, 1, 8, 8)
    binary = load_dataset("digits", ["binarize"])
    assert set(binary.to_display(binary.transformed("val")[0]).unique().tolist()) <= {0.0, 1.0}
    toy = load_dataset("toy2d:gmm8?n=200", ["scale:-1,1"])
    assert torch.allclose(toy.to_display(toy.transformed("train")[0]), toy.split("train").x, atol=1e-5)


def test_transform_objects_are_picklable():
    import pickle

    chain = (
        Binarize("binarize", 16.0, False),
        Dequantize("dequantize", 17),
        Scale("scale", torch.tensor(0.0), torch.tensor(0.5), 0.0),
        Logit("logit", 1e-6),
    )
    assert len(pickle.loads(pickle.dumps(chain))) == 4


@pytest.mark.parametrize(
    ("spec", "names", "message"),
    [
        ("digits", ["blur"], "unknown transform 'blur'; known transforms: binarize"),
        ("toy2d:gmm8?n=50", ["dequantize"], "needs discrete data"),
        ("toy2d:gmm8?n=50", ["binarize"], "needs discrete data with known levels"),
        ("digits", ["logit"], r"needs continuous data in \[0, 1\].*scale before it"),
        ("digits", ["dequantize", "logit"], "put scale before it"),
        ("digits", ["scale:1,-1"], "bad target range"),
        ("digits", ["logit:0.7"], "bad alpha"),
        ("digits", ["binarize:soft"], "unknown binarize option"),
        ("digits", ["dequantize", "scale", "logit", "scale"], "unbounded range"),
        ("digits", ["dequantize", "binarize"], "binarize image data before dequantize"),
    ],
)
def test_transform_errors_name_the_problem(spec, names, message):
    with pytest.raises(DataError, match=message):
        load_dataset(spec, names)


def test_single_string_is_one_transform():
    assert load_dataset("digits", "scale:-1,1").transforms == ("scale:-1,1",)
