"""Feature spaces and the image metrics computed in them, on real digits with known answers."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from dgm.data import load_dataset
from dgm.data.info import DataInfo
from dgm.errors import DgmError
from dgm.eval.features import (
    RandomConvFeatures,
    class_histogram,
    classifier_score,
    feature_space,
    image_sample_metrics,
)
from dgm.eval.sample_quality import frechet_distance, kernel_inception_distance, precision_recall


@pytest.fixture(scope="module")
def mnist():
    """The digits28 space, images in [0, 1], test labels and train and test features."""
    ds = load_dataset("mnist5k")
    space = feature_space(ds.raw_info)
    train, test = ds.to_display(ds.split("train").x), ds.to_display(ds.split("test").x)
    return {
        "space": space,
        "train": train,
        "test": test,
        "y": ds.split("test").y,
        "f_train": space.features(train),
        "f_test": space.features(test),
    }


def noise_images(n, shape, seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


def test_spaces_are_chosen_by_image_shape():
    assert feature_space(DataInfo((1, 28, 28), "discrete", 256, 10)).name == "digits28"
    assert feature_space(DataInfo((1, 8, 8), "discrete", 17, 10)).name == "digits8"
    fallback = feature_space(DataInfo((3, 16, 16), "discrete", 256))
    assert fallback.name == "random-conv" and fallback.fallback and fallback.fd_label == "FD-random-conv"
    assert feature_space(DataInfo((1, 28, 28), "binary", 2), "random-conv").fallback
    with pytest.raises(DgmError, match="no feature space"):
        feature_space(DataInfo((1, 16, 16), "binary", 2), "digits28")


def test_vector_data_gets_a_clear_error():
    with pytest.raises(DgmError, match="need images.*toy 2-D data has its own metrics"):
        feature_space(DataInfo((2,), "continuous"))


def test_features_reject_wrong_shapes_and_values(mnist):
    space = mnist["space"]
    with pytest.raises(DgmError, match="shape"):
        space.features(torch.rand(4, 1, 8, 8))
    with pytest.raises(DgmError, match=r"\[0, 1\]"):
        space.features(255 * torch.rand(4, 1, 28, 28))


def test_frechet_distance_of_a_set_with_itself_is_zero(mnist):
    assert frechet_distance(mnist["f_train"], mnist["f_train"]) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("spec", ["mnist5k", "digits"])
def test_real_test_images_are_much_closer_to_train_than_noise(spec):
    ds = load_dataset(spec)
    space = feature_space(ds.raw_info)
    train, test = (space.features(ds.to_display(ds.split(s).x)) for s in ("train", "test"))
    noise = space.features(noise_images(test.shape[0], ds.raw_info.shape))
    assert frechet_distance(train, test) < 0.05 * frechet_distance(train, noise)


def test_frechet_distance_grows_with_the_noise_level(mnist):
    test = mnist["test"][::2]
    z = torch.randn(test.shape, generator=torch.Generator().manual_seed(1))
    fds = [
        frechet_distance(mnist["f_train"], mnist["space"].features((test + s * z).clamp(0, 1)))
        for s in (0.0, 0.1, 0.2, 0.3, 0.5, 0.8)
    ]
    assert all(a < b for a, b in zip(fds, fds[1:], strict=False)), fds


def test_half_the_classes_lowers_recall_but_not_precision(mnist):
    space, f_train = mnist["space"], mnist["f_train"]
    full = precision_recall(f_train, mnist["f_test"])
    half = precision_recall(f_train, space.features(mnist["test"][mnist["y"] < 5]))
    assert half["recall"] < 0.65 * full["recall"]
    assert half["precision"] > 0.8 and half["precision"] > full["precision"] - 0.05


def test_kid_of_disjoint_real_halves_is_zero_on_average(mnist):
    space, f_test = mnist["space"], mnist["f_test"]
    gen = torch.Generator().manual_seed(0)
    halves = []
    for _ in range(8):  # KID of one random split is noisy; its mean over splits is ~0
        perm = torch.randperm(f_test.shape[0], generator=gen)
        halves.append(kernel_inception_distance(f_test[perm[:500]], f_test[perm[500:]], 1, 500, gen)[0])
    noise = kernel_inception_distance(f_test, space.features(noise_images(1000, (1, 28, 28))), 1, 500, gen)[0]
    assert abs(sum(halves) / len(halves)) < 0.03 * noise


def test_classifier_score_is_near_ten_for_real_digits_and_near_one_for_one_class(mnist):
    probs = mnist["space"].probs(mnist["test"])
    assert classifier_score(probs) > 9.0
    assert max(classifier_score(probs[mnist["y"] == c]) for c in range(10)) < 1.5


def test_classifier_score_and_histogram_closed_forms():
    one_hot = torch.eye(4).repeat(5, 1)  # (20, 4): confident and balanced
    assert classifier_score(one_hot) == pytest.approx(4.0)
    assert classifier_score(torch.full((7, 4), 0.25)) == pytest.approx(1.0)
    assert class_histogram(one_hot) == [0.25] * 4
    assert class_histogram(torch.tensor([[0.9, 0.1], [0.8, 0.2]])) == [1.0, 0.0]


def test_class_histogram_of_half_the_classes_has_no_mass_on_the_others(mnist):
    hist = class_histogram(mnist["space"].probs(mnist["test"][mnist["y"] < 5]))
    assert sum(hist) == pytest.approx(1.0)
    assert sum(hist[5:]) < 0.03


def test_image_sample_metrics_entries(mnist):
    real, fake = mnist["train"][::6], mnist["test"][:300]
    metrics = image_sample_metrics(real, fake, kid_subsets=10, kid_subset_size=200)
    assert set(metrics) == {
        "fd_digits", "kid", "precision", "recall", "density", "coverage", "classifier_score", "class_histogram",
    }  # fmt: skip
    for entry in metrics.values():
        assert {"value", "unit", "what", "n"} <= set(entry) and entry["n"] == 300
    assert "FD-digits" in metrics["fd_digits"]["what"] and "not comparable to FID" in metrics["fd_digits"]["what"]
    assert metrics["kid"]["std"] > 0 and len(metrics["class_histogram"]["value"]) == 10
    fd = frechet_distance(mnist["f_train"][::6], mnist["space"].features(fake))
    assert metrics["fd_digits"]["value"] == pytest.approx(fd)
    again = image_sample_metrics(real, fake, mnist["space"], kid_subsets=10, kid_subset_size=200)
    assert json.dumps(again) == json.dumps(metrics)  # seeded and JSON-ready


def test_fallback_space_metrics_have_no_classes():
    real, fake = noise_images(60, (3, 16, 16), 0), noise_images(60, (3, 16, 16), 1)
    metrics = image_sample_metrics(real, fake, kid_subsets=5, kid_subset_size=30)
    assert "fd_random_conv" in metrics and "classifier_score" not in metrics and "fd_digits" not in metrics
    with pytest.raises(DgmError, match="no classes"):
        feature_space(DataInfo((3, 16, 16), "continuous")).probs(real)


FALLBACK_SNIPPET = """
import json, torch
from dgm.data.info import DataInfo
from dgm.eval.features import feature_space
x = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
print(json.dumps(feature_space(DataInfo((3, 16, 16), "continuous")).features(x).tolist()))
"""


def test_fallback_features_are_the_same_in_every_process():
    x = noise_images(8, (3, 16, 16), 0)
    here = feature_space(DataInfo((3, 16, 16), "continuous")).features(x)
    assert torch.equal(RandomConvFeatures(3)(x), here)  # a fresh network is the same network
    out = subprocess.run([sys.executable, "-c", FALLBACK_SNIPPET], capture_output=True, text=True, check=True)
    there = torch.tensor(json.loads(out.stdout))
    assert here.shape == (8, 128) and here.abs().sum() > 0
    torch.testing.assert_close(there, here, rtol=1e-5, atol=1e-6)
