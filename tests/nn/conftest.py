"""Bijector tests: tiny float64 tensors, one thread, seeded weight initialisations."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread_and_seeded(one_thread):
    torch.manual_seed(0)  # weight initialisations: every test is deterministic
