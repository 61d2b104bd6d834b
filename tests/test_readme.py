"""README.md is the user's guide: it documents every config key, and its test command is CI's."""

from __future__ import annotations

import re
import typing

from pydantic import BaseModel

from mesh_platform.settings import Settings
from offline.engine import ROOT

README = (ROOT / "README.md").read_text()


def _keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, f in model.model_fields.items():
        if name == "stack":
            continue
        key = f.alias or name
        out.append(key)
        nested = [
            a for a in (typing.get_args(f.annotation) or (f.annotation,)) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if nested and typing.get_origin(f.annotation) is not tuple:
            out += _keys(nested[0], f"{prefix}{key}.")
    return out


def test_every_config_key_is_documented() -> None:
    reference = README.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    missing = sorted({k for k in _keys(Settings) if f"`{k}`" not in reference})
    assert not missing, f"README's configuration reference lacks {missing}"


def test_quick_start_is_the_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", quick, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.split("#")[0].strip()]
    assert commands == ["make up", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    run = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", run, re.M)
