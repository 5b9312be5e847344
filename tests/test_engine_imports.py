"""The engine imports without the app's extras: a machine with only torch + torchvision (a GPU box running the
benchmarks, a training worker) must be able to import resnet_core, train from the command line and read the
recipes and estimates. captum is for resnet_core.explain, plotly for resnet_core.charts, streamlit for the pages,
tqdm for the command line's progress bar only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MISSING = ("captum", "plotly", "streamlit", "tqdm")

# sys.modules[name] = None makes `import name` raise ImportError, as if the package were not installed.
SCRIPT = "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in MISSING) + """
import resnet_core, resnet_core.train, resnet_core.recipes, resnet_core.estimates
from resnet_core.train.cli import main
try:
    main(["--help"])
except SystemExit as exc:
    assert exc.code == 0, exc.code
leaked = sorted(name for name in sys.modules if name.split(".")[0] in {"captum", "plotly", "streamlit", "tqdm"}
                and sys.modules[name] is not None)
assert not leaked, leaked
print("engine imports ok")
"""


def test_engine_imports_without_captum_plotly_streamlit():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], check=False, cwd=ROOT, env=env, capture_output=True,
                          text=True,
                          timeout=120)
    assert done.returncode == 0, f"stdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-4000:]}"
    assert "engine imports ok" in done.stdout
