"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# The real data files live in the repository's sibling folder shared/data (not in the repo).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of shared/data; skips the test when that folder is absent (e.g. a bare clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not found (it sits beside the repository)")
    return SHARED_DATA


# Ray must see these before it is imported anywhere (conftest loads before test modules):
# every Ray port on 127.0.0.1, no usage reporting.  Single-machine tests only (DESIGN.md).
import os as _os

_os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
_os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray instance for the whole session; if another fixture already started
    Ray in this session, that instance is reused and left running."""
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024**2,
                 resources={"executor": 4},
                 log_to_driver=False)
        started = True
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """One tiny random-init Llama (+ tokenizer trained on a 300 KB stdlib sample) per
    session, saved with save_pretrained; read-only for tests (copy it to modify it)."""
    from models.tiny import init_model
    from models.tokenizer import stdlib_source_sample

    return init_model(tmp_path_factory.mktemp("tiny_model"), "tiny", corpus=list(stdlib_source_sample(300_000)))


@pytest.fixture(scope="session")
def tiny_tied_model_dir(tmp_path_factory) -> Path:
    """Like tiny_model_dir but with tied input/output embeddings (the case where weight
    sync into vLLM's CPU backend used to leave the output layer stale); read-only."""
    from models.tiny import init_model
    from models.tokenizer import stdlib_source_sample

    return init_model(tmp_path_factory.mktemp("tiny_tied_model"), "tiny", tied_embeddings=True,
                      corpus=list(stdlib_source_sample(300_000)))
