"""Layering: components never import the offline tools; the program imports no tool either."""

from __future__ import annotations

import ast

import pytest

from tools.engine import ROOT

FILES = [*sorted((ROOT / "components").glob("*.py")), ROOT / "__main__.py"]


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_program_code_does_not_import_tools(path) -> None:
    assert not [m for m in _imports(path) if m == "tools" or m.startswith("tools.")]


def test_only_the_cluster_components_build_a_kubernetes_provider() -> None:
    builders = sorted(p.name for p in FILES if "kubernetes_provider(" in p.read_text() and p.name != "__init__.py")
    assert builders == ["eks_cluster.py", "existing_cluster.py", "kind_cluster.py"]
