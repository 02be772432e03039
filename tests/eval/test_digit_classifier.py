"""The shipped digit classifiers: accuracy, size, provenance and pickle-free loading."""

from __future__ import annotations

import hashlib
import pickle

import pytest
import torch

from dgm.data import load_dataset
from dgm.eval.digit_classifier import DigitClassifier, load_digit_classifier, load_provenance, weights_paths

# classifier name -> (data spec, minimum grayscale test accuracy)
SHIPPED = {"digits28": ("mnist5k", 0.97), "digits8": ("digits", 0.95)}


@pytest.fixture(scope="module")
def test_images():
    """name -> (test images in [0, 1], labels)."""
    out = {}
    for name, (spec, _) in SHIPPED.items():
        ds = load_dataset(spec)
        out[name] = (ds.to_display(ds.split("test").x), ds.split("test").y)
    return out


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return int((model(x).argmax(1) == y).sum()) / y.shape[0]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_classifier_reaches_the_recorded_test_accuracy(name, test_images):
    model, record = load_digit_classifier(name), load_provenance(name)
    x, y = test_images[name]
    grayscale, binarized = accuracy(model, x, y), accuracy(model, (x > 0.5).float(), y)
    assert grayscale >= SHIPPED[name][1]
    assert grayscale == pytest.approx(record["test_accuracy"]["grayscale"], abs=1e-3)
    assert binarized == pytest.approx(record["test_accuracy"]["binarized"], abs=1e-3)


def test_the_28x28_classifier_also_reads_binarized_digits(test_images):
    x, y = test_images["digits28"]
    assert accuracy(load_digit_classifier("digits28"), (x > 0.5).float(), y) >= 0.97


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_weights_are_small_and_provenance_matches_the_file(name):
    weights, _ = weights_paths(name)
    record, model = load_provenance(name), load_digit_classifier(name)
    data = weights.read_bytes()
    assert len(data) < 1_000_000
    assert record["weights_sha256"] == hashlib.sha256(data).hexdigest()
    assert record["num_params"] == sum(p.numel() for p in model.parameters())
    assert record["data"]["spec"] == SHIPPED[name][0] and record["data"]["train_split"] == "train"
    assert record["command"].startswith("python scripts/train_digit_classifier.py")
    for key in ("seed", "torch_version", "date", "val_accuracy"):
        assert key in record


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_classifier_gives_penultimate_features_and_logits(name):
    model = load_digit_classifier(name)
    size = model.config.image_size
    feats, logits = model.features_and_logits(torch.rand(3, 1, size, size))
    assert isinstance(model, DigitClassifier) and not model.training
    assert feats.shape == (3, model.config.feature_dim) and 64 <= feats.shape[1] <= 128
    assert logits.shape == (3, 10)
    assert load_digit_classifier(name) is model  # cached


def test_loading_never_unpickles(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("weights must not be unpickled")

    for module, attr in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, attr, refuse)
    load_digit_classifier.cache_clear()
    for name in SHIPPED:
        assert isinstance(load_digit_classifier(name), DigitClassifier)
