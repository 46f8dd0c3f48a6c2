import pytest

import vmaptune as vt


@pytest.fixture(scope="session")
def digits():
    return vt.load_dataset("digits")


@pytest.fixture(scope="session")
def diabetes():
    return vt.load_dataset("diabetes")
