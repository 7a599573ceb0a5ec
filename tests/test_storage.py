"""The checkpoint directory is checked from the learner's own placement group (cluster/storage.py)."""

import types

import pytest

from cluster.storage import check_checkpoint_storage


@pytest.fixture
def placement(ray_session):
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    group = placement_group([{"CPU": 0.01}])
    ray.get(group.ready(), timeout=60)
    yield group
    remove_placement_group(group)


def test_a_learner_group_that_writes_where_the_driver_reads_passes(placement, tmp_path):
    directory = tmp_path / "run" / "checkpoints"
    message = check_checkpoint_storage(directory, types.SimpleNamespace(placement=placement))
    assert "seen by the driver" in message and str(directory) in message
    assert directory.is_dir() and not list(directory.iterdir())  # the probe is cleaned up


def test_a_directory_the_learner_cannot_write_is_refused_by_name(placement, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(RuntimeError, match=f"cannot write its checkpoints to {blocker / 'checkpoints'}"):
        check_checkpoint_storage(blocker / "checkpoints", types.SimpleNamespace(placement=placement))


def test_an_in_process_learner_needs_no_check(tmp_path):
    assert "driver's own process" in check_checkpoint_storage(tmp_path, object())
