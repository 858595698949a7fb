"""Shared pytest fixtures: paths to the real datasets beside the repo, quiet TensorFlow."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def shared_datasets() -> pathlib.Path:
    """../shared/datasets, or skip when the checkout has no shared/ beside it."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip("../shared/datasets is not present beside this checkout")
    return SHARED_DATASETS
