"""Every flow test runs on one torch thread (the shared ``one_thread`` fixture): small batches."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield
