"""STAND-IN resource plugin ``pulumi-resource-kubernetes-cert-manager`` 0.2.0, for the local control plane's tests only.

This is NOT the kubernetes-cert-manager plugin that pulumi/pulumi-kubernetes-cert-manager
publishes. That one is a Go program whose module the Go module proxy does not serve here, and
whose release binary cannot be downloaded; ``pulumi up`` of a stack made with
``pulumi_kubernetes_cert_manager.CertManager`` needs a plugin of that name and version all the
same. So that the real CLI and engine take the remote-component path (the SDK registers the
component with ``remote=True``, the engine starts this plugin and calls its ``Construct``, the
plugin registers the children through the engine's resource monitor), this serves that package's
one component with the Pulumi Python SDK's provider support (``pulumi.provider.main``).

What it constructs comes from offline/remote_components.yaml, the table recorded from the real
component's source at v0.2.0 (offline/remote.py), never from the program: one
``kubernetes:helm.sh/v3:Release`` named ``<name>-helm``, a child of the component, with the
values the real one computes, and the component's ``status`` output from it. It runs with the
project's virtualenv; ``install`` puts it into a PULUMI_HOME as plugin version 0.2.0.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pulumi.provider as provider

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from offline import remote  # noqa: E402 (after the checkout is on the path)

TYPE = "kubernetes-cert-manager:index:CertManager"
NAME = remote.package(TYPE)
VERSION = remote.version(TYPE)
#: The executable the CLI looks for in the plugin's directory.
BINARY = f"pulumi-resource-{NAME}"
#: Every object a stand-in creates says so; this is the plugin's own line in `pulumi about` and logs.
DESCRIPTION = f"STAND-IN {BINARY} {VERSION} (tests/itest/local/certmanager_plugin.py), for the local control plane only"


def _plain(value: Any, where: str) -> Any:
    """The stack hands the component plain values; an Output here (a value that depends on
    another resource, or a secret) is not something the stand-in was written for."""
    if isinstance(value, pulumi.Output):
        raise ValueError(f"{DESCRIPTION}: input {where} is an Output; the stand-in takes plain inputs only")
    if isinstance(value, dict):
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


class _Release(pulumi.CustomResource):
    """A ``kubernetes:helm.sh/v3:Release`` with exactly the inputs the table computes (schema names)."""

    status: pulumi.Output[Any]

    def __init__(self, type_: str, name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__(type_, name, {**inputs, "status": None}, opts)


class CertManager(pulumi.ComponentResource):
    status: pulumi.Output[Any]

    def __init__(self, name: str, inputs: dict[str, Any], opts: pulumi.ResourceOptions | None) -> None:
        super().__init__(TYPE, name, {}, opts)
        (child,) = remote.construct(TYPE, name, _plain(inputs, "inputs"))
        release = _Release(child.type, child.name, child.inputs, pulumi.ResourceOptions(parent=self))
        self.status = release.status
        self.register_outputs({"status": release.status})


class StandInProvider(provider.Provider):
    def __init__(self) -> None:
        super().__init__(VERSION)

    def construct(
        self, name: str, resource_type: str, inputs: pulumi.Inputs, options: pulumi.ResourceOptions | None = None
    ) -> provider.ConstructResult:
        if resource_type != TYPE:
            raise ValueError(f"{DESCRIPTION}: unknown resource type {resource_type}; expected {TYPE}")
        component = CertManager(name, dict(inputs), options)
        return provider.ConstructResult(urn=component.urn, state={"status": component.status})


def launcher() -> str:
    """The plugin executable: the project's virtualenv's python running this module."""
    return (
        "#!/bin/sh\n"
        f"# {DESCRIPTION}.\n"
        f"PYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(str(ROOT / '.venv' / 'bin' / 'python'))} "
        '-m tests.itest.local.certmanager_plugin "$@"\n'
    )


def install(pulumi_cli: Path, directory: Path, env: dict[str, str]) -> None:
    """Write the launcher into ``directory`` and install it with ``pulumi plugin install ... --file``
    into the PULUMI_HOME ``env`` names, as plugin ``resource kubernetes-cert-manager 0.2.0``."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / BINARY
    script.write_text(launcher())
    script.chmod(0o755)
    done = subprocess.run(
        [str(pulumi_cli), "plugin", "install", "resource", NAME, VERSION, "--file", str(script)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pulumi plugin install resource {NAME} {VERSION} (stand-in) failed: {done.stderr.strip()}")


def main() -> None:
    provider.main(StandInProvider(), sys.argv[1:])


if __name__ == "__main__":
    main()
