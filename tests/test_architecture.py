"""The engine's layout rules, checked: no Streamlit or plotly where they do not belong, imports flowing one
way (model <- data <- train <- analysis / explain), short modules that each say their one job."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "resnet_core"
MODULES = sorted(p for p in ENGINE.rglob("*.py"))
# Which packages each package may import from (the arrows of docs/architecture.md).
LAYERS = {
    "model": set(),
    "data": {"model"},
    "train": {"model", "data"},
    "analysis": {"model", "data", "train"},
    "explain": {"model", "data", "train"},
    "charts": {"model", "train", "analysis", "explain"},
}
TOP_MODULES_BELOW_MODEL = {"status", "validation", "device", "jobs"}


def _engine_imports(path: Path) -> set[str]:
    """The resnet_core packages or top-level modules that `path` imports (relative or absolute)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[: len(parts) - node.level])
                target = base + (node.module.split(".") if node.module else [])
            else:
                target = (node.module or "").split(".")
            if target[:1] == ["resnet_core"] and len(target) > 1:
                found.add(target[1])
    return found


def test_importing_the_engine_and_its_training_package_loads_neither_streamlit_nor_plotly():
    code = ("import sys, resnet_core, resnet_core.train, resnet_core.data, resnet_core.model, resnet_core.analysis, "
            "resnet_core.recipes, resnet_core.estimates; "
            "print(sorted(m for m in ('streamlit', 'plotly') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ENGINE)))
def test_each_engine_module_is_short_says_its_job_and_knows_no_page(path):
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 600, "split it: one job per module, about 500 lines at most"
    doc = ast.get_docstring(ast.parse(text))
    assert doc and doc.splitlines()[0].strip(), "the module's docstring says its one job in its first line"
    assert "streamlit" not in text, "the engine never imports Streamlit"
    assert "pages/" not in text, "the engine names no page file"


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_flow_one_way(package):
    allowed = LAYERS[package] | {package} | TOP_MODULES_BELOW_MODEL
    for path in (ENGINE / package).rglob("*.py"):
        wrong = _engine_imports(path) - allowed
        if package == "train" and path.name == "cli.py":
            wrong -= {"recipes"}  # the command line's defaults are the app's recipe
        assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}, against the arrows"
