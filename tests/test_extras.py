"""The extras say what they add: every package an extra installs is imported by the code, and every
third-party module the code imports is a dependency or comes with an extra."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]

# distribution name → the module it provides (where they differ)
MODULE_OF = {
    "opencv-python-headless": "cv2",
    "onnxruntime-gpu": "onnxruntime",
    "av": "av",
    "tomli": "tomli",
    "onnxconverter-common": "onnxconverter_common",
    "tritonclient": "tritonclient",
    "scikit-image": "skimage",
}
# modules installed with another distribution, or by the system (JetPack, Debian), and tools not imported
PROVIDED_BY = {
    "google": "protobuf (with tritonclient)",
    "gi": "the system's python3-gi (GStreamer tests)",
    "yaml": "PyYAML, optional: `serve` reads YAML configs when it is installed (TOML always)",
}
# run as tools, or imported by torch on our behalf (torch.utils.tensorboard; torch.onnx's exporter), not by us
TOOLS = {"pytest", "ruff", "mypy", "tensorboard", "onnxscript"}


def _requirements() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"": project["dependencies"], **project["optional-dependencies"]}
    return {name: [re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0] for r in reqs] for name, reqs in groups.items()}


def _imports(folder: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif (  # pytest.importorskip("module") and importlib.import_module("module")
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("importorskip", "import_module")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value.split(".")[0])
    return found


def _third_party(modules: set[str]) -> set[str]:
    local = {"nightvision", "tests", "benchmarks", "training"}
    return {m for m in modules if m not in sys.stdlib_module_names and m not in local}


def test_every_extra_package_is_used() -> None:
    used = _imports("nightvision") | _imports("training") | _imports("tests") | _imports("benchmarks")
    for group, packages in _requirements().items():
        if group == "all":
            continue
        for package in packages:
            module = MODULE_OF.get(package, package.replace("-", "_"))
            if package == "nightvision" or module in TOOLS:
                continue
            assert module in used, f"extra {group or 'core'!r} installs {package}, which no code imports"


def test_every_imported_module_comes_with_a_dependency_or_an_extra() -> None:
    provided = {MODULE_OF.get(p, p.replace("-", "_")) for ps in _requirements().values() for p in ps}
    for folder in ("nightvision", "training"):
        missing = _third_party(_imports(folder)) - provided - set(PROVIDED_BY)
        assert not missing, f"{folder}/ imports {sorted(missing)}, which no dependency or extra installs"


def test_the_runtime_imports_only_core_dependencies_at_module_level() -> None:
    """Top-level imports of the runtime package (not models/, losses/, training/, cluster/, nor the `*_torch.py`
    and `*_numba.py` modules that the runtime imports only when asked for them) are core ones."""
    core = {MODULE_OF.get(p, p.replace("-", "_")) for p in _requirements()[""]}
    optional_homes = ("models", "losses", "training", "cluster")
    for path in (ROOT / "nightvision").rglob("*.py"):
        rel = path.relative_to(ROOT / "nightvision")
        asked_for = path.name.endswith(("_torch.py", "_numba.py"))
        if rel.parts[0] in optional_homes or rel.name in ("export.py",) or asked_for:
            continue
        tree = ast.parse(path.read_text(), str(path))
        top = {a.name.split(".")[0] for n in tree.body if isinstance(n, ast.Import) for a in n.names}
        top |= {n.module.split(".")[0] for n in tree.body if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        extra = _third_party(top) - core
        assert not extra, f"nightvision/{rel} imports {sorted(extra)} at module level; import it where it is used"


def test_all_is_the_union_of_the_runtime_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (spec,) = project["optional-dependencies"]["all"]
    named = set(spec.split("[", 1)[1].rstrip("]").split(","))
    # every extra but the developers' tools (no gpu extra: onnxruntime-gpu replaces a core dependency)
    assert named == set(project["optional-dependencies"]) - {"all", "dev"}
    assert named == {"train", "tensorrt", "ray", "fast"}
