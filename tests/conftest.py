import os

# Several host devices for the sharding tests; harmless elsewhere. Must precede the first jax import.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import pytest  # noqa: E402

import vmaptune as vt  # noqa: E402


@pytest.fixture(scope="session")
def digits():
    return vt.load_dataset("digits")


@pytest.fixture(scope="session")
def diabetes():
    return vt.load_dataset("diabetes")
