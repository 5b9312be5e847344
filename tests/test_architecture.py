"""The engine's layout rules, checked: no Streamlit or plotly where they do not belong, imports flowing one
way (model <- data <- train <- analysis / explain), short modules that each say their one job."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "resnet_core"
MODULES = sorted(p for p in ENGINE.rglob("*.py"))
# Which packages each package may import from (the arrows of docs/architecture.md). Every package of resnet_core
# must be here (test_every_package_has_its_layer), so a new one cannot slip past the rules.
LAYERS = {
    "model": set(),
    "data": {"model"},
    "train": {"model", "data"},
    "serving": {"model", "train"},
    "jobs": {"model", "data", "train", "serving"},
    "analysis": {"model", "data", "train", "serving", "jobs"},
    "explain": {"model", "data", "train"},
    "charts": {"model", "train", "analysis", "explain"},
}
# Top-level modules every package may use: they import nothing of the packages above.
TOP_MODULES_BELOW_MODEL = {"status", "validation", "device", "background", "json_limits", "stats"}


def _target(path: Path, module: str | None, level: int) -> list[str]:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if path.name == "__init__.py":
        parts = parts[:-1] + ("__init__",)
    if level:
        return list(parts[: len(parts) - level]) + (module.split(".") if module else [])
    return (module or "").split(".")


def _engine_imports(path: Path) -> set[str]:
    """The resnet_core packages or top-level modules that `path` imports, in every form: `from ..x import y`,
    `from resnet_core.x import y`, `from .. import x`, `import resnet_core.x`, and imports inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            target = _target(path, node.module, node.level)
            if target[:1] == ["resnet_core"]:
                if len(target) > 1:
                    found.add(target[1])
                else:  # from resnet_core import x / from .. import x: each name is a package or module
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                target = alias.name.split(".")
                if target[0] == "resnet_core" and len(target) > 1:
                    found.add(target[1])
    return found


def test_every_package_has_its_layer():
    packages = {p.parent.name for p in ENGINE.glob("*/__init__.py")}
    assert packages == set(LAYERS), "add the new package to LAYERS (and to docs/architecture.md)"


def test_the_import_parser_sees_every_form(tmp_path):
    here = ENGINE / "train" / "example.py"
    tree = "from ..jobs import x\nimport resnet_core.serving.limits\nfrom .. import charts\n" \
           "def f():\n    from resnet_core.analysis import y\n"
    fake = tmp_path / "resnet_core" / "train" / "example.py"
    fake.parent.mkdir(parents=True)
    fake.write_text(tree)
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        assert _engine_imports(fake) == {"jobs", "serving", "charts", "analysis"}
    finally:
        ROOT = saved
    assert here.name  # (the real tree is checked by test_imports_flow_one_way)


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


def test_the_architecture_docs_module_map_is_the_codes():
    """docs/architecture.md names every module of resnet_core/, ui/ and pages/ with its docstring's first line
    (rewrite it with `python3 docs/module_map.py`), and the doc names no module that does not exist."""
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import module_map
    finally:
        sys.path.pop(0)
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert module_map.updated(doc) == doc, "the module map is stale: run python3 docs/module_map.py"
    import re

    for named in re.findall(r"`((?:resnet_core|ui|pages)/[\w/.-]+\.py)`", doc):
        assert (ROOT / named).is_file(), f"docs/architecture.md names {named}, which does not exist"


def test_adding_a_page_a_method_or_a_reference_map_is_one_place_the_docs_name():
    """docs/architecture.md says where each extensible thing goes, and the code has exactly that place: every page
    file is one PAGES entry (app.py's navigation registers PAGES, so a page file outside it would not be reachable),
    every attribution method one register_method call, every reference map one register_reference call."""
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for words in ("`ui/frame.py`'s `PAGES`", "register_method", "register_reference(Reference(...))"):
        assert words in doc, words
    from ui.frame import HOME_PAGE, PAGES

    files = {str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py")}
    assert files == {HOME_PAGE, *(path for path, *_ in PAGES)}
    assert "run_app()" in (ROOT / "app.py").read_text(encoding="utf-8")
    from resnet_core.explain import METHOD_LABELS
    from resnet_core.explain.references import reference_names

    methods = (ENGINE / "explain" / "methods.py").read_text(encoding="utf-8")
    assert len(re.findall(r"^register_method\(Method\(", methods, re.M)) == len(METHOD_LABELS)
    references = (ENGINE / "explain" / "references.py").read_text(encoding="utf-8")
    assert len(re.findall(r"^register_reference\(Reference\(", references, re.M)) == len(reference_names())
