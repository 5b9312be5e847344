import os
import signal
import time

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


def _child_workers() -> list[int]:
    """Training workers this pytest process started itself (its direct children running resnet_core.train)."""
    me, found = str(os.getpid()), []
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry.name}/stat").read()
            cmdline = open(f"/proc/{entry.name}/cmdline", "rb").read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1] == me and fields[0] != "Z" and b"resnet_core.train" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture(autouse=True)
def no_worker_outlives_its_test():
    """A test that fails half-way may leave the training it started running; on two cores that worker would
    starve every later test into its own timeout (one such cascade held CI to its deadline). Whatever workers a
    test leaves behind are stopped after it, and the test fails saying so."""
    before = set(_child_workers())
    yield
    left = [pid for pid in _child_workers() if pid not in before]
    deadline = time.monotonic() + 30  # a stopped run saves its weights and exits: give it its grace
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [pid for pid in left if pid in _child_workers()]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"the test left {len(left)} training worker(s) running; they were killed"
