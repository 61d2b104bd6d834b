"""Layering by lifecycle: the product imports no tool or test; the harness no operations command.

The tree: the product ships: ``__main__.py`` and ``components/``, on the program's own library
``mesh_platform/`` (which imports no component); ``offline/`` (the mock-engine harness and verifier)
runs on laptops and in CI; ``ops/`` touches cloud accounts and the Pulumi CLI's state; ``tests/``
(with the local control plane under ``tests/itest/local``) runs in CI. Each imports only what lies
below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from offline.engine import ROOT

PRODUCT = [ROOT / "__main__.py", *sorted((ROOT / "components").glob("*.py"))]
#: The program's own library sits below its components: it never imports them.
LIBRARY = sorted((ROOT / "mesh_platform").glob("*.py"))
OFFLINE = sorted((ROOT / "offline").rglob("*.py"))
OPS = sorted((ROOT / "ops").glob("*.py"))
#: package → the top-level packages of this tree it must never import.
FORBIDDEN = {"product": {"offline", "ops", "tests", "itest", "tools"}, "library": {"components", "offline", "ops", "tests", "itest", "tools"},
             "offline": {"ops", "tests", "itest", "tools"}, "ops": {"tests", "itest", "tools"}}  # fmt: skip


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
    return out


CASES = (
    [("product", p) for p in PRODUCT]
    + [("library", p) for p in LIBRARY]
    + [("offline", p) for p in OFFLINE]
    + [("ops", p) for p in OPS]
)


@pytest.mark.parametrize(("layer", "path"), CASES, ids=[str(p.relative_to(ROOT)) for _, p in CASES])
def test_each_layer_imports_only_what_is_below_it(layer, path) -> None:
    assert not _imports(path) & FORBIDDEN[layer], sorted(_imports(path) & FORBIDDEN[layer])


def test_the_layer_check_sees_a_forbidden_import(tmp_path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from offline import engine\nimport ops.backend\n")
    assert _imports(bad) & FORBIDDEN["product"] == {"offline", "ops"}


def test_every_folder_says_what_lives_there_and_what_it_may_import() -> None:
    for package in ("components", "mesh_platform", "offline", "offline/verify", "ops", "tests/itest", "tests/itest/local"):
        doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
        assert doc and "import" in doc.lower(), package


def test_only_the_cluster_components_build_a_kubernetes_provider() -> None:
    builders = sorted(p.name for p in PRODUCT if "kubernetes_provider(" in p.read_text() and p.parent.name == "components")
    assert builders == ["eks_cluster.py", "existing_cluster.py", "kind_cluster.py"]
