"""Run the real ``__main__.py`` under Pulumi's mock engine and record every resource registration.

No cluster, no Pulumi CLI, no network: ``pulumi.runtime.set_mocks`` replaces the engine, and a
``MockMonitor`` subclass keeps each ``RegisterResourceRequest`` exactly as the SDK sent it (type,
name, parent, provider, dependencies, protect, inputs). ``offline.render``, ``offline.verify`` and the
tests all use this one harness.
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
from unittest import mock

import pulumi
import yaml
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as pulumi_resource
from pulumi.runtime.proto import resource_pb2, source_pb2

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "mesh-platform"
SECRET = "[secret]"
UNKNOWN = "[unknown]"

# Sentinels of Pulumi's RPC encoding (sdk/python/lib/pulumi/runtime/rpc.py).
_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

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
            obj = {k: r.inputs[k] for k in ("apiVersion", "kind", "metadata") if k in r.inputs}
            obj.update({k: v for k, v in r.inputs.items() if k not in obj})
            out.append(obj)
        return out


def _plain(value: Any) -> Any:
    """Turn Pulumi's RPC encoding into plain JSON: secrets and unknowns become placeholders."""
    if isinstance(value, dict):
        sig = value.get(_SIG)
        if sig == _SECRET_SIG:
            return SECRET
        if sig == _RESOURCE_SIG:
            return value.get("urn")
        if sig == _OUTPUT_SIG:
            if value.get("secret"):
                return SECRET
            return _plain(value["value"]) if "value" in value else UNKNOWN
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if value == _UNKNOWN:
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
            outputs["status"] = {"status": "deployed", "name": args.inputs.get("name"), "namespace": args.inputs.get("namespace")}
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

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ["mock-1a", "mock-1b", "mock-1c"], "zoneIds": ["z1", "z2", "z3"]}
        if args.token == "aws:eks/getCluster:getCluster":
            return {"name": args.args.get("name"), "vpcConfig": {"clusterSecurityGroupId": "sg-eks-managed"}}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/mock", "userId": "mock"}
        return {}


class RecordingMonitor(pulumi_mocks.MockMonitor):
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
        return response

    def _respond(self, request: Any, inputs: dict[str, Any]) -> Any:
        """What ``MockMonitor.RegisterResource`` answers, without its round trip through Python values.

        MockMonitor decodes the request's inputs, asks the mocks for outputs and encodes them
        again (on an event loop of its own, per call). The SDK starts a resource's outputs from
        its inputs and applies the engine's answer over them (``rpc.resolve_outputs``), so the
        echo of the inputs changes nothing: the answer carries the computed outputs alone, which
        are plain JSON. tests/test_engine.py compares every recording of both ways.
        """
        urn = self.make_urn(request.parent, request.type, request.name)
        args = pulumi.runtime.MockResourceArgs(
            typ=request.type,
            name=request.name,
            inputs=inputs,
            provider=request.provider,
            resource_id=request.importId,
            custom=bool(request.custom),
        )
        outputs = struct_pb2.Struct()
        outputs.update(self.stack_mocks.computed(args))
        resource_id = self.stack_mocks.resource_id(request.name)
        self.resources[urn] = pulumi_mocks.MockMonitor.ResourceRegistration(urn, resource_id, inputs)
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=outputs)

    def GetDeploymentInfo(self, request: Any) -> Any:  # noqa: N802
        # Without resource references the SDK sends a resource input (eks.Cluster's security
        # group, a node group's cluster) as its URN/ID instead of a reference that the mock
        # would have to rehydrate on another event loop. The recorded inputs show URNs either way.
        info = super().GetDeploymentInfo(request)
        features = [f for f in info.supportedFeatures if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES]
        return resource_pb2.DeploymentInfo(supportedFeatures=features)

    def SupportsFeature(self, request: Any) -> Any:  # noqa: N802
        if request.id == "resourceReferences":
            return type("SupportsFeatureResponse", (object,), {"hasSupport": False})
        return super().SupportsFeature(request)

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
            value, _ = SECRET, secret_keys.append(full)
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


class _InlineLoop(asyncio.SelectorEventLoop):
    """An event loop that runs the SDK's monitor calls in its own thread.

    The SDK sends each call to the engine from a thread pool, because a real engine answers
    over gRPC. The recording monitor answers at once, so the hop to a thread and back (a
    self-pipe wake-up per call, the GIL passed between threads) was a quarter of a render's
    time. A call made while another runs inline (MockMonitor's invoke pumps the loop) takes the
    pool as before.
    """

    _inline = False

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future:
        if executor is not None or self._inline:
            return super().run_in_executor(executor, func, *args)
        future = self.create_future()
        self._inline = True
        try:
            future.set_result(func(*args))
        except Exception as err:
            future.set_exception(err)
        finally:
            self._inline = False
        return future


def _without_stack_traces() -> contextlib.AbstractContextManager[Any]:
    """Skip the SDK's capture of a stack trace per resource (source positions for the engine's
    diagnostics): the mock engine ignores them, and capturing them was 6 % of a render."""
    return mock.patch.object(pulumi_resource, "_get_stack_trace", source_pb2.StackTrace)


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


def run(stack: str, config_file: Path | None = None, config: dict[str, str] | None = None, faithful: bool = False) -> Recording:
    """Run ``__main__.py`` for ``stack`` under the mock engine; pulumi.RunError propagates.

    ``faithful=True`` runs the SDK and ``MockMonitor`` exactly as shipped: monitor calls on a
    thread pool, stack traces captured, outputs decoded and encoded again. The recording is the same.
    """
    if config is None:
        config, secret_keys = read_config(config_file or stack_file(stack))
    else:
        secret_keys = []
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    recording = Recording(stack=stack)
    mocks = StackMocks()
    loop = asyncio.new_event_loop() if faithful else _InlineLoop()
    asyncio.set_event_loop(loop)
    pulumi.runtime.set_all_config(config, secret_keys)
    monitor = RecordingMonitor(mocks, recording, faithful=faithful)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    # set_mocks makes a root Stack of its own; the program's must be the one that collects exports.
    pulumi.runtime.settings.ROOT.set(None)
    try:
        with contextlib.nullcontext() if faithful else _without_stack_traces(), _collector_paused():
            loop.run_until_complete(
                pulumi.runtime.stack.run_in_stack(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))
            )
    finally:
        # A failed run leaves tasks waiting, and the SDK's lists of calls and outputs naming them:
        # end the tasks (as asyncio.run does) and forget the lists (as the SDK's test decorator
        # does), or the next run in this process waits on them and this closed loop.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        pulumi.runtime.settings.SETTINGS.rpc_manager.clear()
        pulumi.runtime.settings.SETTINGS.outputs.clear()
        loop.close()
        asyncio.set_event_loop(None)
    return recording
