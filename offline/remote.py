"""What a remote (multi-language) component constructs, from the recorded table of its source.

A remote component, such as ``pulumi_kubernetes_cert_manager.CertManager``, is registered with
``remote=True``: the engine hands its inputs to the package's provider plugin, which registers the
component's children itself. Under the mock engine there is no plugin, so nothing below the
component would be recorded. ``construct`` computes what the real component registers, from
offline/remote_components.yaml (read from the package's source at its version, every line with its
source) and never from this program's constants: the mock engine adds it to the recording, and
the local control plane's stand-in plugin (tests/itest/local/certmanager_plugin.py) registers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

TABLE = Path(__file__).resolve().parent / "remote_components.yaml"


@dataclass(frozen=True)
class Child:
    """One resource a remote component registers, as its provider sends it."""

    type: str
    name: str
    inputs: dict[str, Any]


@cache
def table() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(TABLE.read_text())


def known(type_: str) -> bool:
    """Whether the table records what the component of this type token constructs."""
    return type_ in table()


def behaviour(type_: str) -> dict[str, Any]:
    try:
        return table()[type_]
    except KeyError:
        raise KeyError(f"{TABLE.name} records no remote component {type_!r}; known: {', '.join(sorted(table()))}") from None


def _without_nulls(value: dict[str, Any]) -> dict[str, Any]:
    """A map as the Go SDK sends it: entries whose value is null left out."""
    return {k: v for k, v in value.items() if v is not None}


def construct(type_: str, name: str, inputs: dict[str, Any]) -> list[Child]:
    """The children the component ``type_`` named ``name`` registers for ``inputs`` (its inputs as
    sent to the engine: schema names, plain JSON)."""
    b = behaviour(type_)
    helm = dict(inputs.get("helmOptions") or {})
    # The typed inputs are laid over helmOptions.values, each top-level key whole; an unset one
    # erases the key of its name.
    values = dict(helm.get("values") or {})
    for key in b["typedValues"]:
        values[key] = inputs.get(key)
    values.pop("helmOptions", None)
    release = {f: helm[f] for f in b["releaseFields"] if helm.get(f) is not None}
    if release.get("chart") is None:
        release["chart"] = b["defaultChart"]
    repository = dict(helm.get("repositoryOpts") or {})
    if repository.get("repo") is None:
        repository["repo"] = b["defaultRepo"]
    release["repositoryOpts"] = _without_nulls(repository)
    release["values"] = _without_nulls(values)
    child = b["child"]
    release.update(child.get("fixedInputs") or {})
    return [Child(type=child["type"], name=f"{name}{child['nameSuffix']}", inputs=release)]


def version(type_: str) -> str:
    """The plugin version the component's SDK asks the CLI for."""
    return str(behaviour(type_)["version"])


def package(type_: str) -> str:
    return str(behaviour(type_)["package"])
