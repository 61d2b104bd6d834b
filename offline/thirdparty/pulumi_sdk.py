"""The Pulumi Python SDK's internals that the mock-engine harness (``offline/engine.py``) uses.

Tested with pulumi 3.272.0 (``TESTED``; the pin of requirements.txt). :func:`check`, which
``engine.run`` calls before the program starts, refuses any other installed version with one line
(:class:`offline.thirdparty.UntestedVersionError`: ``error: ...`` and exit 2 from every command). It
refuses rather than falls back: the harness's faithful path (``engine.run(faithful=True)``, the
SDK's calls on its thread pool, MockMonitor's own answers) still decodes with the SDK's markers,
subclasses its mock monitor and resets its globals, so no path is free of the names below. To adopt
another SDK version: pin it in requirements.txt, add it to ``TESTED`` and run the suite;
tests/test_engine.py records every stack and provider both ways and compares the recordings.

Both paths, what a recording needs:

- ``pulumi.runtime.rpc._special_sig_key``, ``_special_secret_sig``, ``_special_resource_sig`` and
  ``_special_output_value_sig`` (and the public ``UNKNOWN``): the markers of the SDK's property
  encoding, which ``engine._plain`` turns into plain JSON and placeholders. They are read with
  ``getattr``: an SDK without them still imports ``offline.engine`` and gets :func:`check`'s one
  line, not an ImportError. Other values on a tested version would leave the raw marker objects in
  the recorded inputs (tests/test_eks_cluster.py expects ``[secret]``).
- ``pulumi.runtime.mocks.MockMonitor`` (``pulumi.runtime`` does not export it): :class:`Monitor`
  subclasses it, uses its ``make_urn``, ``resources`` and ``ResourceRegistration``, and overrides its
  ``GetDeploymentInfo`` and ``SupportsFeature`` to leave resource references out. Without them the
  SDK sends a resource input (eks.Cluster's security group, a node group's cluster) as its URN or
  ID instead of a reference the mock would rehydrate on another event loop; the recorded inputs
  show URNs either way. Changed signatures: TypeError or AttributeError at the first registration.
- ``pulumi.runtime.settings.set_root_resource`` (not exported): ``set_mocks`` makes a root Stack of
  its own, which :func:`install_mocks` forgets so that the program's Stack collects the exports.
  Gone: AttributeError; no longer effective: set_mocks' Stack collects the exports, not the program's.
- ``pulumi.runtime.settings.SETTINGS.callbacks`` (where the SDK keeps its callback server): a
  resource with ``transforms`` (components/cert_manager.py) has the SDK register each with that
  server, which it starts on first use: a gRPC server on loopback, whose threads stay in the
  process and make every later ``fork`` (the connectivity analysis' workers) print gRPC's
  "skipping fork() handlers" to stderr. :func:`install_mocks` puts :class:`Callbacks` there
  instead, which hands out the callback references and serves nothing: the mock engine runs no
  transform (``MockMonitor`` does not either). Ignored by the SDK: a server starts as before, and
  tests/test_thirdparty.py's one-line stderr check fails.
- ``pulumi.runtime.settings.SETTINGS.rpc_manager`` and ``.outputs``: :func:`forget_run` clears them
  after every run, as ``pulumi.runtime.test`` does. A failed run leaves calls and outputs there that
  the next run in the same process would wait on (tests/test_engine.py, a failing mock).

The quick path only, for speed (shares of a render's time, measured when each was introduced):

- ``pulumi.runtime.resource._get_stack_trace``: the SDK captures a stack trace per resource (source
  positions for the engine's diagnostics). The mock engine ignores them; capturing them was 6 % of a
  render. :func:`without_stack_traces` has it return an empty ``source_pb2.StackTrace`` for the
  render. Renamed: ``mock.patch`` raises AttributeError.
- The SDK calls the monitor with ``asyncio.get_running_loop().run_in_executor(None, ...)`` (in
  ``pulumi.runtime.resource``, ``invoke``, ``settings``, ``stack``), because a real engine answers
  over gRPC: :class:`InlineLoop` runs such a call at once in the loop's thread. The hop to the pool
  and back was a quarter of a render. If the SDK reached the monitor another way, its calls would
  take the pool again: slower, the same recording (tests/test_engine.py checks their thread).
- ``rpc.resolve_outputs`` starts a resource's outputs from its inputs and applies the engine's
  answer over them, so :meth:`Monitor.answer` gives the computed outputs alone, without
  MockMonitor's decoding and encoding of every input on an event loop of its own per call. If the
  SDK stopped starting from the inputs, echoed outputs would be missing: tests/test_engine.py's
  comparisons with the faithful path fail.

The generated protobufs (``pulumi.runtime.proto``) are the engine's protocol and used as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from importlib import metadata
from typing import Any
from unittest import mock

import pulumi
from google.protobuf import struct_pb2
from pulumi.runtime import mocks as sdk_mocks
from pulumi.runtime import resource as sdk_resource
from pulumi.runtime import rpc
from pulumi.runtime import settings as sdk_settings
from pulumi.runtime.proto import callback_pb2, resource_pb2, source_pb2

from offline.thirdparty import UntestedVersionError, untested

DIST = "pulumi"
#: The SDK versions this module was tested with (tests/test_thirdparty.py holds requirements.txt's pin here).
TESTED = ("3.272.0",)


def _private(module: Any, name: str) -> Any:
    """``module.name``, or a marker that equals nothing when this SDK has no such name (then
    :func:`check` refuses the version before it is used)."""
    return getattr(module, name, object())


#: The markers of the SDK's property encoding (sdk/python/lib/pulumi/runtime/rpc.py).
SIG_KEY: str = _private(rpc, "_special_sig_key")
SECRET_SIG: str = _private(rpc, "_special_secret_sig")
RESOURCE_SIG: str = _private(rpc, "_special_resource_sig")
OUTPUT_VALUE_SIG: str = _private(rpc, "_special_output_value_sig")
#: An asset (``pulumi.StringAsset``, ``FileAsset``): ``text``, ``path`` or ``uri`` beside the marker.
ASSET_SIG: str = _private(rpc, "_special_asset_sig")
UNKNOWN: str = rpc.UNKNOWN

_MockMonitor: type = getattr(sdk_mocks, "MockMonitor", object)


@functools.cache
def installed() -> str:
    """The installed version (read once per process; forked workers inherit it)."""
    return metadata.version(DIST)


def check() -> None:
    """Refuse, in one line, an installed SDK this module was not tested with."""
    version = installed()
    if version not in TESTED:
        reason = untested(DIST, version, TESTED, "offline/thirdparty/pulumi_sdk.py", "the mock engine (offline/engine.py) uses")
        raise UntestedVersionError(f"{reason}: install the pin of requirements.txt")


class Monitor(_MockMonitor):
    """The SDK's ``MockMonitor`` without resource references, and with a direct answer (:meth:`answer`)."""

    def answer(self, request: Any, inputs: dict[str, Any], resource_id: str, outputs: dict[str, Any]) -> Any:
        """What ``MockMonitor.RegisterResource`` answers, with ``outputs`` (plain JSON) as the only outputs."""
        urn = self.make_urn(request.parent, request.type, request.name)
        struct = struct_pb2.Struct()
        struct.update(outputs)
        self.resources[urn] = _MockMonitor.ResourceRegistration(urn, resource_id, inputs)  # type: ignore[attr-defined]  # the SDK's untyped inner class
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=struct)

    def GetDeploymentInfo(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        info = super().GetDeploymentInfo(request)
        features = [f for f in info.supportedFeatures if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES]
        return resource_pb2.DeploymentInfo(supportedFeatures=features)

    def SupportsFeature(self, request: Any) -> Any:  # noqa: N802
        if request.id == "resourceReferences":
            return type("SupportsFeatureResponse", (object,), {"hasSupport": False})
        return super().SupportsFeature(request)


class Callbacks:
    """What the SDK registers a resource's transforms with, in place of its callback server: the
    references it sends to the engine, and no server (the mock engine calls no transform)."""

    TARGET = "offline-engine"

    def __init__(self) -> None:
        self.transforms: dict[Any, str] = {}

    def register_transform(self, transform: Any) -> Any:
        token = self.transforms.setdefault(transform, f"transform-{len(self.transforms)}")
        return callback_pb2.Callback(token=token, target=self.TARGET)


def install_mocks(mocks: pulumi.runtime.Mocks, monitor: Monitor, project: str, stack: str) -> None:
    """``pulumi.runtime.set_mocks`` with ``monitor``, without the root Stack it makes of its own,
    and :class:`Callbacks` where the SDK would start its callback server."""
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)
    sdk_settings.set_root_resource(None)  # type: ignore[arg-type]
    sdk_settings.SETTINGS.callbacks = Callbacks()


def forget_run() -> None:
    """Forget the calls and outputs the SDK tracks for a run (as ``pulumi.runtime.test`` does)."""
    sdk_settings.SETTINGS.rpc_manager.clear()
    sdk_settings.SETTINGS.outputs.clear()


def without_stack_traces() -> contextlib.AbstractContextManager[Any]:
    """Skip the SDK's capture of a stack trace per resource."""
    return mock.patch.object(sdk_resource, "_get_stack_trace", source_pb2.StackTrace)


class InlineLoop(asyncio.SelectorEventLoop):
    """An event loop that runs the SDK's monitor calls in its own thread.

    The recording monitor answers at once, so the hop to a thread and back (a self-pipe wake-up
    per call, the GIL passed between threads) buys nothing. A call made while another runs inline
    (MockMonitor's invoke pumps the loop) takes the pool as before.
    """

    _inline = False

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> asyncio.Future:  # type: ignore[override]
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
