"""README.md is the user's guide: it documents every config key, and its test command is CI's."""

from __future__ import annotations

import re
import typing

from pydantic import BaseModel

from mesh_platform.settings import Settings
from offline.engine import ROOT

README = (ROOT / "README.md").read_text()


def _key_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every key a stack file may write below ``model``, as ``group.key``, ``[]`` for list items."""
    out = []
    for name, f in model.model_fields.items():
        if name == "stack":  # the stack's name, from Pulumi, not a config key
            continue
        key = f"{prefix}{f.alias or name}"
        out.append(key)
        nested = [a for a in (*typing.get_args(f.annotation), f.annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if nested:
            out += _key_paths(nested[0], f"{key}[]." if typing.get_origin(f.annotation) is tuple else f"{key}.")
    return out


KEYS = _key_paths(Settings)
REFERENCE = README.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
#: The keys the reference documents: each group's heading, each table row's first column.
DOCUMENTED = re.findall(r"^(?:### |\| )`([^`]+)`(?:$| \|)", REFERENCE, re.M)


def test_the_walk_sees_nested_list_items() -> None:
    assert {"apps.services[].allowFrom", "apps.services[].routes", "apps.services[].routes[].destinations[].weight"} <= set(KEYS)
    assert {"cluster.kind.nodeImage", "certManager.acme.email", "charts.repos"} <= set(KEYS)


def test_every_config_key_is_in_the_reference() -> None:
    missing = [k for k in KEYS if k not in DOCUMENTED]
    assert not missing, f"README's configuration reference lacks {missing}"


def test_every_key_the_reference_lists_exists() -> None:
    unknown = [k for k in DOCUMENTED if k not in KEYS]
    assert not unknown, f"README's configuration reference lists keys the settings do not have: {unknown}"
    assert len(DOCUMENTED) == len(set(DOCUMENTED)), "a key is listed twice"


def test_ci_runs_the_readme_test_command() -> None:
    run = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", run, re.M)
