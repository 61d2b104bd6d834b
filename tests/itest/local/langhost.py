"""The Pulumi CLI's Python language host, as narrow as this project needs it.

The Go module of ``pulumi-language-python`` is not served by the Go module proxy here (see
tests/itest/local/build.py), so this serves its gRPC service, ``pulumirpc.LanguageRuntime``, with the
protobufs the pinned ``pulumi`` wheel ships (``pulumi.runtime.proto``), and runs the program the
way the real host does: the project's virtualenv's python runs ``pulumi-language-python-exec``
(from the SDK module at the pin of requirements.txt, ``build.PULUMI_SDK``) with the monitor and engine addresses, the stack's
config in ``PULUMI_CONFIG`` and its secret keys in ``PULUMI_CONFIG_SECRET_KEYS``.

What it leaves out: dependency installation (``make venv`` does that), program generation and
packing, and plugin discovery: it reports no required plugins, so the CLI never tries to download
one; the only provider the local stacks use, kubernetes, is installed beforehand.

The CLI starts it as ``pulumi-language-python [flags] <engine address>`` and reads the port it
listens on from the first line of its stdout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

from .build import PULUMI_SDK

#: The SDK version requirements.txt pins (read there by build.py); the host reports it as its own.
VERSION = PULUMI_SDK
#: exit code with which pulumi-language-python-exec says it already showed the user the error.
USER_ACTIONABLE_EXIT = 32


def exec_script() -> str:
    """pulumi-language-python-exec: beside this host's wrapper (``PULUMI_LANGUAGE_PYTHON_EXEC``)."""
    return os.environ["PULUMI_LANGUAGE_PYTHON_EXEC"]


def python_of(info: language_pb2.ProgramInfo) -> str:
    """The program's interpreter: Pulumi.yaml's ``runtime.options.virtualenv`` under its root."""
    options = dict(info.options) if info.HasField("options") else {}
    venv = options.get("virtualenv")
    if venv:
        path = Path(venv) if os.path.isabs(venv) else Path(info.root_directory) / venv
        return str(path / "bin" / "python")
    return sys.executable


def command(req: language_pb2.RunRequest, engine: str) -> list[str]:
    info = req.info
    program_dir = info.program_directory or req.pwd
    return [
        python_of(info),
        "-u",
        exec_script(),
        "--monitor",
        req.monitor_address,
        "--engine",
        engine,
        "--project",
        req.project,
        "--stack",
        req.stack,
        "--pwd",
        program_dir,
        "--dry_run",
        "true" if req.dryRun else "false",
        "--parallel",
        str(req.parallel),
        "--organization",
        req.organization,
        "--root_directory",
        info.root_directory or program_dir,
        info.entry_point or req.program or ".",
        *req.args,
    ]


class LanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    def __init__(self, engine: str) -> None:
        self.engine = engine

    def Handshake(self, request, context):
        self.engine = request.engine_address or self.engine
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=VERSION)

    def GetRequiredPlugins(self, request, context):
        return language_pb2.GetRequiredPluginsResponse()

    def GetRequiredPackages(self, request, context):
        return language_pb2.GetRequiredPackagesResponse()

    def GetProgramDependencies(self, request, context):
        return language_pb2.GetProgramDependenciesResponse()

    def RuntimeOptionsPrompts(self, request, context):
        return language_pb2.RuntimeOptionsResponse()

    def About(self, request, context):
        return language_pb2.AboutResponse(executable=sys.executable, version=VERSION)

    def InstallDependencies(self, request, context):
        return iter(())

    def Run(self, request, context):
        env = {
            **os.environ,
            "PULUMI_CONFIG": json.dumps(dict(request.config)),
            "PULUMI_CONFIG_SECRET_KEYS": json.dumps(list(request.configSecretKeys)),
        }
        done = subprocess.run(command(request, self.engine), env=env, check=False)
        if done.returncode == 0:
            return language_pb2.RunResponse()
        if done.returncode == USER_ACTIONABLE_EXIT:
            return language_pb2.RunResponse(bail=True)
        return language_pb2.RunResponse(error=f"Program exited with non-zero exit code: {done.returncode}")

    def Cancel(self, request, context):
        return empty_pb2.Empty()


def main(argv: list[str]) -> int:
    positional = [a for a in argv if not a.startswith("-")]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.max_receive_message_length", 400 << 20)])
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(LanguageHost(positional[-1] if positional else ""), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    # The CLI ends its plugins with SIGINT (then SIGKILL): stop serving, quietly.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: server.stop(0))
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
