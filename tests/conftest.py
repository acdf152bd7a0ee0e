"""Shared pytest fixtures: a real local Ray instance for the tests that need one."""

import pytest


@pytest.fixture(scope="session")
def ray_instance():
    """A local Ray instance with 2 CPUs, started once for the session and shut down after.

    Executors created while it runs join it and leave it running when they close. Ray comes
    with the test extra (`pip install -e '.[test]'`), so a missing Ray fails these tests.
    """
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
