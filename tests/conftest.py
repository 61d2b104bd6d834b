"""Shared fixtures: stacks rendered once per session under the mock engine (offline/engine.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from offline import engine
from offline.graph import Graph


@cache
def _stack(name: str) -> engine.Recording:
    return engine.run(name)


@pytest.fixture(scope="session")
def stack() -> Callable[[str], engine.Recording]:
    """``stack("dev")``: the recording of stacks/Pulumi.dev.yaml."""
    return _stack


def run_config(stack: str = "test", **groups: Any) -> engine.Recording:
    """Run the program with only these config groups set (``cluster={...}``, ``apps={...}``)."""
    key = {"cert_manager": "certManager"}
    config = {f"mesh-platform:{key.get(g, g)}": json.dumps(v) for g, v in groups.items()}
    return engine.run(stack, config=config)


@pytest.fixture
def run() -> Callable[..., engine.Recording]:
    return run_config


def graph(recording: engine.Recording) -> Graph:
    return Graph.of(recording)


def one(recording: engine.Recording, type_: str, name: str | None = None) -> engine.Registration:
    """The single registration of ``type_`` (and ``name``); fails listing what there is."""
    found = [r for r in recording.resources if r.type == type_ and (name is None or r.name == name)]
    assert len(found) == 1, f"expected one {type_} {name or ''}, found {[r.urn for r in found]}"
    return found[0]


def objects(recording: engine.Recording, kind: str) -> list[dict]:
    return [m for m in recording.manifests() if m.get("kind") == kind]


@cache
def _verified(name: str):
    from offline.verify.pipeline import verify_stack

    return verify_stack(name)


@pytest.fixture(scope="session")
def verified():
    """``verified("dev")``: offline.verify's Result for a stack, computed once."""
    return _verified


@pytest.fixture
def aws_credentials(monkeypatch) -> None:
    """Fake credentials for moto, and none of the machine's own profile."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
