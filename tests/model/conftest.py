"""The tiny artifact's split, recomputed independently of the build, to check its numbers against."""

from __future__ import annotations

import pytest

from model.pipeline import BuildOptions, load_examples
from model.split import Split, grouped_split
from tests.conftest import CACHE

TINY_LIMIT = 3000  # tests/conftest.py's tiny_artifact trains on this many examples


@pytest.fixture(scope="session")
def tiny_split() -> Split:
    return grouped_split(load_examples(BuildOptions(limit=TINY_LIMIT, cache_dir=CACHE))[0])
