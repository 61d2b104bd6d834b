"""Run the real ``__main__.py`` under Pulumi's mock engine and record every resource registration.

No cluster, no Pulumi CLI, no network: ``pulumi.runtime.set_mocks`` replaces the engine, and a
``MockMonitor`` subclass keeps each ``RegisterResourceRequest`` exactly as the SDK sent it (type,
name, parent, provider, dependencies, protect, inputs). ``offline.render``, ``offline.verify`` and the
tests all use this one harness. What it needs of the SDK's internals is in
``offline.thirdparty.pulumi_sdk``, which refuses an SDK version it was not tested with.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import runpy
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format

from offline import remote
from offline.thirdparty import pulumi_sdk
from offline.thirdparty.pulumi_sdk import OUTPUT_VALUE_SIG, RESOURCE_SIG, SECRET_SIG, SIG_KEY

ROOT = Path(__file__).resolve().parent.parent
#: The program ``run`` executes (tests point it at a changed copy, to see what the checks make of it).
PROGRAM = ROOT / "__main__.py"
PROJECT = "mesh-platform"
SECRET = "[secret]"
UNKNOWN = "[unknown]"

#: What the mock engine hands back for outputs a real provider would compute.
#: What ``docker network inspect kind`` gives on a dual-stack network whose IPv4 pool is not 172.16/12.
FAKE_KIND_SUBNETS = "192.168.97.0/24\nfc00:f853:ccd:e793::/64\n"
FAKE_KUBECONFIG = yaml.safe_dump(
    {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "mock", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "contexts": [{"name": "mock", "context": {"cluster": "mock", "user": "mock"}}],
        "current-context": "mock",
        "users": [{"name": "mock", "user": {"token": "mock"}}],
    }
)


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str | None
    provider: str | None
    dependencies: list[str]
    protect: bool
    custom: bool
    inputs: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "provider": self.provider,
            "dependencies": self.dependencies,
            "protect": self.protect,
            "inputs": self.inputs,
        }


@dataclass
class Recording:
    stack: str
    resources: list[Registration] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def by_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def by_urn(self) -> dict[str, Registration]:
        return {r.urn: r for r in self.resources}

    def manifests(self) -> list[dict[str, Any]]:
        """Every Kubernetes object the stack declares directly (not Helm releases, not providers)."""
        out = []
        for r in self.resources:
            if not r.type.startswith("kubernetes:") or r.type.startswith("kubernetes:helm.sh"):
                continue
            obj: dict[str, Any] = {k: r.inputs[k] for k in ("apiVersion", "kind", "metadata") if k in r.inputs}
            obj.update({k: v for k, v in r.inputs.items() if k not in obj})
            out.append(obj)
        return out


def _plain(value: Any) -> Any:
    """Turn Pulumi's RPC encoding into plain JSON: secrets and unknowns become placeholders."""
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return SECRET
        if sig == RESOURCE_SIG:
            return value.get("urn")
        if sig == OUTPUT_VALUE_SIG:
            if value.get("secret"):
                return SECRET
            return _plain(value["value"]) if "value" in value else UNKNOWN
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value == pulumi_sdk.UNKNOWN:
        return UNKNOWN
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class StackMocks(pulumi.runtime.Mocks):
    """Echo inputs back as outputs, plus the few outputs the program reads from real providers."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        # Custom resources echo their inputs; remote components (multi-language packages such
        # as eks, awsx, cert-manager) have outputs of other shapes, so only known ones are set.
        outputs = dict(args.inputs) if args.custom else {}
        outputs.update(self.computed(args))
        return self.resource_id(args.name), outputs

    @staticmethod
    def resource_id(name: str) -> str:
        return f"{name}-id"

    def computed(self, args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
        """The outputs a real provider would compute (what is not an echo of the inputs)."""
        outputs: dict[str, Any] = {}
        if args.typ == "command:local:Command":
            # The kind network probe prints the Docker network's subnets; the other commands a kubeconfig.
            outputs["stdout"] = FAKE_KIND_SUBNETS if args.name.endswith("-kind-network") else FAKE_KUBECONFIG
        if args.typ == "kubernetes:helm.sh/v3:Release":
            outputs["status"] = self.release_status(args.inputs)
        if not args.custom and remote.known(args.typ):
            # A remote component's outputs are its children's (offline/remote_components.yaml).
            (child,) = remote.construct(args.typ, args.name, args.inputs)
            outputs.update({out: self.release_status(child.inputs) for out in remote.behaviour(args.typ)["outputs"]})
        if args.typ == "eks:index:Cluster":
            outputs["kubeconfigJson"] = json.dumps(yaml.safe_load(FAKE_KUBECONFIG))
            outputs["clusterSecurityGroupId"] = "sg-cluster"
            outputs["nodeSecurityGroupId"] = "sg-nodes"
            outputs["oidcProviderArn"] = "arn:aws:iam::123456789012:oidc-provider/mock"
        if (args.typ.startswith("aws:") or args.typ.startswith("awsx:")) and not (args.custom and "arn" in args.inputs):
            outputs["arn"] = f"arn:aws:mock:::{args.name}"
        if args.typ == "awsx:ec2:Vpc":
            outputs["vpcId"] = "vpc-mock"
            outputs["privateSubnetIds"] = ["subnet-private-a", "subnet-private-b"]
            outputs["publicSubnetIds"] = ["subnet-public-a", "subnet-public-b"]
        return outputs

    @staticmethod
    def release_status(inputs: dict[str, Any]) -> dict[str, Any]:
        return {"status": "deployed", "name": inputs.get("name"), "namespace": inputs.get("namespace")}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        """The invoke's result and no check failures (MockMonitor.Invoke takes the pair; it iterates
        the failures, so none is an empty list, never None)."""
        return self._result(args), []

    def _result(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ["mock-1a", "mock-1b", "mock-1c"], "zoneIds": ["z1", "z2", "z3"]}
        if args.token == "aws:eks/getCluster:getCluster":
            return {"name": args.args.get("name"), "vpcConfig": {"clusterSecurityGroupId": "sg-eks-managed"}}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/mock", "userId": "mock"}
        return {}


class RecordingMonitor(pulumi_sdk.Monitor):
    """A MockMonitor that keeps each RegisterResourceRequest as the SDK sent it."""

    def __init__(self, mocks: StackMocks, recording: Recording, faithful: bool = False) -> None:
        super().__init__(mocks)
        self.stack_mocks, self.recording, self.faithful = mocks, recording, faithful

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.type == "pulumi:pulumi:Stack":
            return super().RegisterResource(request)
        inputs = _plain(json_format.MessageToDict(request.object, preserving_proto_field_name=True))
        response = super().RegisterResource(request) if self.faithful else self._respond(request, inputs)
        self.recording.resources.append(
            Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent or None,
                # A provider reference is "<urn>::<id>"; URNs contain "::" themselves.
                provider=request.provider.rsplit("::", 1)[0] if request.provider else None,
                dependencies=list(request.dependencies),
                protect=bool(request.protect),
                custom=bool(request.custom),
                inputs=inputs,
            )
        )
        if request.remote and remote.known(request.type):
            self._construct(request, response.urn, inputs)
        return response

    def _construct(self, request: Any, urn: str, inputs: dict[str, Any]) -> None:
        """Record the children a remote component's plugin would register (offline/remote.py): no
        plugin runs here. Each is a child of the component, with the provider of its package from
        the component's providers, no dependencies of its own (it waits for what the component
        waits for, through its parent) and the component's protect flag (the Go SDK's children
        inherit it: pulumi/pulumi sdk/v3 go/pulumi/context.go, ``parent.getProtect()``)."""
        for child in remote.construct(request.type, request.name, inputs):
            provider = request.providers.get(child.type.split(":", 1)[0])
            self.recording.resources.append(
                Registration(
                    urn=self.make_urn(urn, child.type, child.name),
                    type=child.type,
                    name=child.name,
                    parent=urn,
                    provider=provider.rsplit("::", 1)[0] if provider else None,
                    dependencies=[],
                    protect=bool(request.protect),
                    custom=True,
                    inputs=child.inputs,
                )
            )

    def _respond(self, request: Any, inputs: dict[str, Any]) -> Any:
        """What ``MockMonitor.RegisterResource`` answers, without its round trip through Python values.

        MockMonitor decodes the request's inputs, asks the mocks for outputs and encodes them
        again (on an event loop of its own, per call). The SDK starts a resource's outputs from
        its inputs and applies the engine's answer over them (see ``pulumi_sdk``), so the echo of
        the inputs changes nothing: the answer carries the computed outputs alone, which are plain
        JSON. tests/test_engine.py compares every recording of both ways.
        """
        args = pulumi.runtime.MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=inputs,
            provider=request.provider,
            resource_id=request.importId,
            custom=bool(request.custom),
        )
        return self.answer(request, inputs, self.stack_mocks.resource_id(request.name), self.stack_mocks.computed(args))

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
            self.recording.outputs = _plain(json_format.MessageToDict(request.outputs, preserving_proto_field_name=True))
        return super().RegisterResourceOutputs(request)


class StackFileError(pulumi.RunError):
    """The stack file itself is unusable (missing, unreadable, not a mapping, keys of no namespace)."""


def stack_file(stack: str) -> Path:
    return ROOT / "stacks" / f"Pulumi.{stack}.yaml"


def read_config(path: Path) -> tuple[dict[str, str], list[str]]:
    """Pulumi config map (``project:key`` → JSON string for objects) from Pulumi.yaml defaults and a stack file."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    config: dict[str, Any] = {}
    for key, decl in (project.get("config") or {}).items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        if isinstance(decl, dict) and "default" in decl:
            config[full] = decl["default"]
    try:
        # libyaml's loader: the same documents as yaml.safe_load, read ten times as fast.
        data = yaml.load(path.read_text(), Loader=yaml.CSafeLoader) or {}
    except OSError as err:
        raise StackFileError(f"cannot read stack file {path}: {err.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise StackFileError(f"stack file {path} is not valid YAML: {' '.join(str(err).split())}") from None
    if not isinstance(data, dict):
        raise StackFileError(f"stack file {path} must be a mapping with a 'config:' key, not a {type(data).__name__}")
    stack_config = data.get("config") or {}
    if not isinstance(stack_config, dict) or not all(isinstance(k, str) for k in stack_config):
        raise StackFileError(f"stack file {path}: 'config:' must map <namespace>:<key> names to values")
    from mesh_platform.loader import namespace_errors

    bad = namespace_errors(stack_config)
    if bad:
        raise StackFileError("\n  ".join([f"stack file {path}: invalid config keys:", *bad]))
    secret_keys = []
    for key, value in stack_config.items():
        full = key
        if isinstance(value, dict) and set(value) == {"secure"}:
            value = SECRET
            secret_keys.append(full)
        config[full] = value
    encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    return encoded, secret_keys


def settings(config_file: Path, stack: str) -> Any:
    """The validated ``mesh_platform.settings.Settings`` of a stack file (pulumi.RunError if invalid)."""
    from mesh_platform.loader import parse

    config, _ = read_config(config_file)
    raw = {k.split(":", 1)[1]: _decoded(v) for k, v in config.items() if k.startswith(f"{PROJECT}:")}
    return parse(raw, stack)


def _decoded(value: str) -> Any:
    """A config value as the program sees it: objects arrive JSON-encoded, a plain string as is
    (``mesh-platform:charts: m`` is then refused as 'should be an object', not a JSON error)."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while the program registers its resources.

    The SDK makes a few dozen short-lived objects (outputs, futures, tasks) per property; the
    collector's passes over them were a quarter of a render's time. A render is one bounded
    batch. What it leaves joins the oldest generation (``freeze`` then ``unfreeze``), so resuming
    costs no pass over it now; its few cycles go at the next full collection.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        if paused:
            gc.enable()


def _program() -> None:
    runpy.run_path(str(PROGRAM), run_name="__main__")


def run(stack: str, config_file: Path | None = None, config: dict[str, str] | None = None, faithful: bool = False) -> Recording:
    """Run ``__main__.py`` for ``stack`` under the mock engine; pulumi.RunError propagates.

    ``faithful=True`` runs the SDK and ``MockMonitor`` exactly as shipped: monitor calls on a
    thread pool, stack traces captured, outputs decoded and encoded again. The recording is the same.
    An SDK version ``offline.thirdparty.pulumi_sdk`` was not tested with is refused (UsageError).
    """
    pulumi_sdk.check()
    if config is None:
        config, secret_keys = read_config(config_file or stack_file(stack))
    else:
        secret_keys = []
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    recording = Recording(stack=stack)
    mocks = StackMocks()
    # Quick path: the SDK's monitor calls run in the loop's thread (pulumi_sdk.InlineLoop, a quarter
    # of a render) and its stack trace per resource is skipped (pulumi_sdk.without_stack_traces, 6 %).
    loop = asyncio.new_event_loop() if faithful else pulumi_sdk.InlineLoop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_all_config(config, secret_keys)
    monitor = RecordingMonitor(mocks, recording, faithful=faithful)
    # The program's Stack, not one of set_mocks' own, collects the exports.
    pulumi_sdk.install_mocks(mocks, monitor, project=PROJECT, stack=stack)
    try:
        with contextlib.nullcontext() if faithful else pulumi_sdk.without_stack_traces(), _collector_paused():
            loop.run_until_complete(pulumi.runtime.run_in_stack(_program))
    finally:
        # A failed run leaves tasks waiting, and the SDK's lists of calls and outputs naming them:
        # end the tasks (as asyncio.run does) and forget the lists (as the SDK's test decorator
        # does), or the next run in this process waits on them and this closed loop.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        pulumi_sdk.forget_run()
        loop.close()
        asyncio.set_event_loop(None)
    return recording
