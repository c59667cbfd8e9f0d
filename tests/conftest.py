"""Shared pytest fixtures: the real camera files of ../shared/data (skipped when absent), one torch thread."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    env = os.environ.get("RAW_SYNTH_SHARED_DATA")
    if env:
        return Path(env)
    return REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of real camera files (``../shared/data``); skips the test when it is missing."""
    path = _shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent")
    return path


def shared_file(shared_data: Path, relative: str) -> Path:
    """Return one file of the shared data folder or skip the test when it is missing."""
    path = shared_data / relative
    if not path.exists():
        pytest.skip(f"shared data file {path} is absent")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small tensors: one thread is faster and immune to a busy machine (``pytestmark = usefixtures(...)``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
