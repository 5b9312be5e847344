import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads: see resnet_core/__init__.py

import torch  # noqa: E402

# Two cores on CI: keep torch from oversubscribing them.
torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_collection_modifyitems(config, items):
    """Every browser test is slow; unit tests that train for seconds carry the marker themselves."""
    import pytest

    for item in items:
        if "e2e" in item.keywords:
            item.add_marker(pytest.mark.slow)
