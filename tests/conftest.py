import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see resnet_core/__init__.py

import torch  # noqa: E402

# Two cores on CI: keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


import pytest  # noqa: E402


@pytest.fixture
def one_torch_thread():
    """Tiny convolutions gain nothing from a second thread, and on a CPU shared with other jobs two OpenMP
    threads that spin-wait for each other made such tests up to 100x slower; restored after. Modules of tiny-net
    tests use it with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config, items):
    """Every browser test is slow; unit tests that train for seconds carry the marker themselves."""
    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(pytest.mark.slow)
