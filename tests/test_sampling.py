"""Drawing samples: reproducible in batches, labels only from the classes a model was trained on."""

from __future__ import annotations

import torch

import dgm
from dgm.sampling import draw_samples, sample_labels


def test_labels_cycle_through_the_kept_classes():
    ds = dgm.load_dataset("digits", transforms=["binarize"], classes="2,5,7")
    model = dgm.build("independent", data=ds, conditional=True)
    assert sample_labels(model, 7, ds.classes).tolist() == [2, 5, 7, 2, 5, 7, 2]
    assert sample_labels(model, 12).tolist() == [*range(10), 0, 1]
    assert sample_labels(dgm.build("independent", data=ds), 5) is None


def test_batched_draws_are_reproducible_and_follow_the_labels(digits_binary):
    model = dgm.build("independent", data=digits_binary, conditional=True)
    with torch.no_grad():  # class c: pixel c on for sure, every other pixel off
        model.table.fill_(-30.0)
        model.table[torch.arange(10), torch.arange(10)] = 30.0
    labels = torch.arange(25) % 10
    a = draw_samples(model, 25, seed=3, cond=labels, batch_size=10)
    b = draw_samples(model, 25, seed=3, cond=labels, batch_size=10)
    assert a.shape == (25, 1, 8, 8) and torch.equal(a, b)
    assert torch.equal(a.flatten(1).argmax(1), labels) and a.sum() == 25
    assert model.training  # the model's mode is restored
