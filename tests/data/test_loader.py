"""Loaders: plain DataLoaders yielding transformed Batch objects."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from dgm.data import load_dataset
from dgm.errors import DataError
from dgm.models.base import Batch


def test_loader_yields_batches_with_labels():
    ds = load_dataset("mnist5k", ["binarize"])
    loader = ds.loader("val", 64, shuffle=False)
    assert type(loader) is DataLoader
    batches = list(loader)
    assert len(batches) == 7  # 400 / 64 rounded up
    first = batches[0]
    assert isinstance(first, Batch)
    assert first.x.shape == (64, 1, 28, 28) and first.x.dtype == torch.float32
    assert first.cond.dtype == torch.long and torch.equal(first.cond, ds.split("val").y[:64])
    assert torch.equal(first.x, (ds.split("val").x[:64] > 127.5).float())
    assert sum(len(b.x) for b in batches) == 400
    assert len(ds.loader("val", 64, shuffle=True, drop_last=True)) == 6


def test_shuffled_batches_are_a_permutation_of_the_split_with_labels_kept_paired():
    ds = load_dataset("digits")
    split = ds.split("train")
    batches = list(ds.loader("train", 64, shuffle=True))
    x = torch.cat([b.x for b in batches]).flatten(1)
    y = torch.cat([b.cond for b in batches])
    assert len(x) == split.n and not torch.equal(y, split.y)  # shuffled
    # each example's pixels identify it: sorted by a random projection, both give the same rows and labels
    direction = torch.randn(x.shape[1], generator=torch.Generator().manual_seed(0))
    got, want = torch.argsort(x @ direction), torch.argsort(split.x.flatten(1) @ direction)
    assert torch.equal(x[got], split.x.flatten(1)[want]) and torch.equal(y[got], split.y[want])


def test_unlabelled_loader_gives_cond_none():
    ds = load_dataset("toy2d:checkerboard?n=1000", ["scale:-1,1"])
    batch = next(iter(ds.loader("train", 100, shuffle=True)))
    assert batch.cond is None and batch.x.shape == (100, 2)
    assert batch.x.abs().max() <= 1.0 + 1e-6


def test_stochastic_transforms_redraw_every_batch():
    ds = load_dataset("digits", ["dequantize"])
    loader = ds.loader("train", 50, shuffle=False)
    a, b = next(iter(loader)).x, next(iter(loader)).x
    assert not torch.equal(a, b)
    assert torch.equal(torch.floor(a), ds.split("train").x[:50])


def test_loader_can_be_rebuilt_with_a_distributed_sampler():
    # What Lightning does under DDP: the same dataset and collate_fn with a new sampler.
    ds = load_dataset("digits", ["binarize"])
    loader = ds.loader("train", 32, shuffle=True)
    collate = pickle.loads(pickle.dumps(loader.collate_fn))
    sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=1, shuffle=True, seed=0)
    rebuilt = DataLoader(loader.dataset, batch_size=32, sampler=sampler, collate_fn=collate)
    batches = list(rebuilt)
    assert sum(len(b.x) for b in batches) == 500
    assert isinstance(batches[0], Batch) and batches[0].cond.shape == (32,)


def test_loader_works_with_a_worker_process():
    ds = load_dataset("toy2d:gmm8?n=256")
    loader = DataLoader(
        ds.loader("train", 128, False).dataset,
        batch_size=128,
        num_workers=1,
        collate_fn=ds.loader("train", 128, False).collate_fn,
    )
    assert [b.x.shape[0] for b in loader] == [128, 128]


def test_loader_rejects_bad_arguments():
    ds = load_dataset("digits")
    with pytest.raises(DataError, match="unknown split 'dev'"):
        ds.loader("dev", 10, shuffle=False)
    with pytest.raises(DataError, match="batch_size must be a positive integer"):
        ds.loader("train", 0, shuffle=False)
