"""Shared fixtures: configs and stacks rendered once per session under the mock engine (offline/engine.py).

Unit tests build their input here or in their own module, never from stacks/: a stack file is a
user's environment, and editing it must not change what a component test checks. ``LIKE`` states
configs shaped like the stack files (``like("dev")`` renders the dev-like one); ``stack("dev")``
renders stacks/Pulumi.dev.yaml itself, for the tests that are about the stack files (they render,
verify, and keep the promises their comments make: tests/test_stacks.py) and for the verifier's.

The fast loop (``make test-fast``, ``pytest -m "not slow"``) leaves out what ``SLOW`` names below.
"""

from __future__ import annotations

import fnmatch
import gc
import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from combinations import PROVIDERS

from mesh_platform.settings import RUN_DATE_ENV
from offline import engine
from offline.graph import Graph

#: The date every test runs at, in this process and in every one it starts: no test reads the real
#: clock (the EKS support calendar is read at the date of the run; mesh_platform/settings.py).
RUN_DATE = "2026-12-04"
os.environ[RUN_DATE_ENV] = RUN_DATE

#: Configs like the stack files', stated here so that no stack file edit reaches a unit test.
#: Each is rendered under its own stack name (``like("dev")`` is stack ``dev``), so the cluster
#: names, URNs and outputs are those a render of the stack file of that name had when copied.
LIKE: dict[str, dict[str, Any]] = {
    # A dev-like config: kind with one worker, everything on, every request traced.
    "dev": {
        "cluster": {"provider": "kind", "name": "mesh-dev", "workers": 1},
        "observability": {"enabled": True, "tracingSampling": 100},
    },
    # A lab-like config: the smallest kind cluster (control plane only), observability off.
    "lab": {"cluster": {"provider": "kind", "name": "mesh-lab", "workers": 0}},
    # A local-like config: an existing cluster (a stand-in kubeconfig), every chart from a mirror.
    "local": {
        "cluster": {**PROVIDERS["existing"], "name": "mesh-local"},
        "observability": {"enabled": True, "tracingSampling": 100, "nodeCidrs": ["127.0.0.1/32"]},
        "charts": {"mirror": "http://127.0.0.1:8879"},
    },
    # A staging-like config: EKS in two zones, not protected, ACME (staging server), HTTPS redirect.
    "staging": {
        "cluster": {
            "provider": "eks",
            "name": "mesh-staging",
            "kubernetesVersion": "1.35",
            "eks": {
                "region": "eu-west-1",
                "availabilityZones": 2,
                "natGateways": "Single",
                "publicAccessCidrs": ["203.0.113.0/24"],
                "instanceType": "m6i.large",
                "minNodes": 2,
                "desiredNodes": 2,
                "maxNodes": 4,
            },
        },
        "apps": {"hosts": ["staging.mesh.example.com"]},
        "certManager": {
            "gatewayIssuer": "mesh-platform-acme",
            "httpsRedirect": True,
            "acme": {"email": "platform@example.com", "server": "https://acme-staging-v02.api.letsencrypt.org/directory"},
        },
    },
    # A prod-like config: EKS in three zones, protected, two replicas of istiod and the gateway,
    # 1 % of requests traced, ACME (production server), HTTPS redirect.
    "prod": {
        "cluster": {
            "provider": "eks",
            "name": "mesh-prod",
            "kubernetesVersion": "1.35",
            "eks": {
                "region": "eu-west-1",
                "availabilityZones": 3,
                "natGateways": "OnePerAz",
                "publicAccessCidrs": ["203.0.113.0/24"],
                "instanceType": "m6i.xlarge",
                "minNodes": 3,
                "desiredNodes": 3,
                "maxNodes": 9,
                "protect": True,
            },
        },
        "istio": {"istiodReplicas": 2, "gatewayReplicas": 2},
        "observability": {"enabled": True, "tracingSampling": 1},
        "apps": {"hosts": ["mesh.example.com"]},
        "certManager": {
            "gatewayIssuer": "mesh-platform-acme",
            "httpsRedirect": True,
            "acme": {"email": "platform@example.com", "server": "https://acme-v02.api.letsencrypt.org/directory"},
        },
    },
}

#: Left out of the fast loop (marked ``slow``), by module name; a single test elsewhere that needs
#: the verifier carries ``@pytest.mark.slow`` itself. What stays is the program's own tests:
#: components/, mesh_platform/, __main__.py, the stack files' promises, the README's reference.
SLOW = (
    # The verifier's self-tests (offline/): its checks, fast paths, CLI, render, harness and fences.
    "test_verify_*",
    "test_combinations",
    "test_fuzz",
    "test_engine",
    "test_thirdparty",
    "test_render",
    "test_cli",
    # Every option combination rendered (tests/combinations.py), each checked.
    "test_images",
    "test_chart_values",
    # The tools around the program: ops/ against moto, the Makefile and scripts/ with stand-ins,
    # the CI workflows, the local control plane's build and stand-ins (tests/itest/local).
    "test_backend",
    "test_preflight",
    "test_labs",
    "test_makefile_*",
    "test_e2e_script",
    "test_workflows",
    "test_local",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(fnmatch.fnmatch(item.path.stem, pattern) for pattern in SLOW):
            item.add_marker(pytest.mark.slow)


def pytest_sessionfinish() -> None:
    # Every render leaves its cycles to the collector (offline/engine.py, ``_collector_paused``), and
    # the collections at exit (pytest's, then the interpreter's) walk all of them: two seconds after
    # the fast loop's few dozen renders. The process is ending and the OS takes the memory back, so
    # the collector is told to leave alone what is there now.
    gc.freeze()


@cache
def _stack(name: str) -> engine.Recording:
    return engine.run(name)


@pytest.fixture(scope="session")
def stack() -> Callable[[str], engine.Recording]:
    """``stack("dev")``: the recording of stacks/Pulumi.dev.yaml (tests about the stack files only)."""
    return _stack


def config_of(**groups: Any) -> dict[str, str]:
    """The engine's config map of these config groups (``cluster={...}`` → ``mesh-platform:cluster``)."""
    key = {"cert_manager": "certManager"}
    return {f"mesh-platform:{key.get(g, g)}": json.dumps(v) for g, v in groups.items()}


@cache
def _rendered(stack: str, groups: str) -> engine.Recording:
    return engine.run(stack, config=config_of(**json.loads(groups)))


def run_config(stack: str = "test", **groups: Any) -> engine.Recording:
    """Run the program with only these config groups set (``cluster={...}``, ``apps={...}``).

    Each distinct stack and config is rendered once per session: the recording is shared, so copy
    it (``copy.deepcopy``) before changing it. A run that depends on more than its config (an
    environment variable, a patched module) takes ``render_config``.
    """
    return _rendered(stack, json.dumps(groups, sort_keys=True))


def render_config(stack: str = "test", **groups: Any) -> engine.Recording:
    """``run_config`` rendered afresh, for a run under ``monkeypatch``."""
    return engine.run(stack, config=config_of(**groups))


@pytest.fixture
def run() -> Callable[..., engine.Recording]:
    return run_config


@pytest.fixture(scope="session")
def like() -> Callable[[str], engine.Recording]:
    """``like("dev")``: the recording of ``LIKE["dev"]``, the dev-like config, rendered once."""
    return lambda name: run_config(name, **LIKE[name])


def write_stack_file(path: Path, **groups: Any) -> Path:
    """A stack file at ``path`` that sets these config groups (for code that reads a file)."""
    path.write_text(yaml.safe_dump({"config": {f"mesh-platform:{g}": v for g, v in groups.items()}}))
    return path


def graph(recording: engine.Recording) -> Graph:
    return Graph.of(recording)


#: What an EKS stack keeps from an accidental ``pulumi destroy`` when it sets ``eks.protect``.
PROTECTABLE = ("eks:index:Cluster", "awsx:ec2:Vpc", "eks:index:ManagedNodeGroup")


def protection(recording: engine.Recording) -> dict[str, bool]:
    """``protect`` of each protectable EKS resource, and the cluster's own deletion protection."""
    out = {t: one(recording, t).protect for t in PROTECTABLE}
    out["deletionProtection"] = bool(one(recording, "eks:index:Cluster").inputs.get("deletionProtection"))
    return out


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
    """``verified("dev")``: offline.verify's Result for a stack file, computed once."""
    return _verified


@pytest.fixture
def aws_credentials(monkeypatch) -> None:
    """Fake credentials for moto, and none of the machine's own profile."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
