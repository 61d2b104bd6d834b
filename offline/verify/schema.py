"""Schema validation: every object against its API's schema, unknown fields being errors.

- Kubernetes core/built-in APIs: ``kubernetes-validate`` (the OpenAPI schemas of each Kubernetes
  release), strict mode, at the stack's Kubernetes version.
- Istio and cert-manager: the ``cloudcoil.models.*`` packages, pydantic models generated from those
  projects' CRD schemas. The models ignore unknown keys, so ``_unknown_keys`` walks the model tree
  and reports any key the schema does not define.
- Calico's operator API (``operator.tigera.io/v1``): no maintained package carries its schema, so
  ``CALICO_SCHEMAS`` below is written by hand for the fields this project uses (strict).
"""

from __future__ import annotations

import functools
import gc
import importlib
import importlib.util
import multiprocessing
import os
import re
import sys
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pydantic
from referencing import Registry, Resource

from offline.verify import Violation, ref

#: apiVersion → importable cloudcoil module holding its models.
_CRD_MODULES = {
    "networking.istio.io/v1": "cloudcoil.models.istio.networking.v1",
    "security.istio.io/v1": "cloudcoil.models.istio.security.v1",
    "telemetry.istio.io/v1": "cloudcoil.models.istio.telemetry.v1",
    "cert-manager.io/v1": "cloudcoil.models.cert_manager.v1",
}

_STR = {"type": "string"}
_POOL = {
    "type": "object",
    "additionalProperties": False,
    "required": ["cidr"],
    "properties": {
        "name": _STR,
        "cidr": _STR,
        "encapsulation": {"enum": ["IPIP", "IPIPCrossSubnet", "VXLAN", "VXLANCrossSubnet", "None"]},
        "natOutgoing": {"enum": ["Enabled", "Disabled"]},
        "nodeSelector": _STR,
        "blockSize": {"type": "integer", "minimum": 20, "maximum": 32},
        # As the CRD (calico v3.32.1 operator.tigera.io_installations.yaml, unchanged from v3.31.7) types them: no enums.
        "allowedUses": {"type": "array", "items": _STR},
        "disableNewAllocations": {"type": "boolean"},
        "disableBGPExport": {"type": "boolean"},
        "assignmentMode": _STR,
    },
}
_INSTALLATION_SPEC = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "kubernetesProvider": {"enum": ["", "EKS", "GKE", "AKS", "OpenShift", "DockerEnterprise", "RKE2", "TKG", "Kind"]},
        "cni": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"type": {"enum": ["Calico", "GKE", "AmazonVPC", "AzureVNET"]}, "ipam": {"type": "object"}},
        },
        "calicoNetwork": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"bgp": {"enum": ["Enabled", "Disabled"]}, "ipPools": {"type": "array", "items": _POOL}},
        },
        "nodeMetricsPort": {"type": "integer", "minimum": 1, "maximum": 65535},
        "typhaMetricsPort": {"type": "integer", "minimum": 1, "maximum": 65535},
    },
}
#: Hand-written (no package carries them): the operator.tigera.io/v1 kinds this project creates.
CALICO_SCHEMAS: dict[str, dict[str, Any]] = {
    kind: {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "operator.tigera.io/v1"},
            "kind": {"const": kind},
            "metadata": {"type": "object", "required": ["name"], "properties": {"name": {"const": "default"}}},
            "spec": spec,
        },
    }
    for kind, spec in {
        "Installation": _INSTALLATION_SPEC,
        "Goldmane": {"type": "object", "additionalProperties": False, "properties": {}},
        "Whisker": {"type": "object", "additionalProperties": False, "properties": {}},
    }.items()
}


def _model_types(annotation: Any) -> list[type[pydantic.BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, list, Union)."""
    out: list[type[pydantic.BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    for arg in typing.get_args(annotation):
        out.extend(_model_types(arg))
    if isinstance(annotation, types.UnionType):
        for arg in annotation.__args__:
            out.extend(_model_types(arg))
    return out


def _unknown_keys(model: type[pydantic.BaseModel], data: Any, path: str) -> Iterable[str]:
    if isinstance(data, list):
        for i, item in enumerate(data):
            yield from _unknown_keys(model, item, f"{path}[{i}]")
        return
    if issubclass(model, pydantic.RootModel):
        # A oneOf in the CRD schema: the data must fit one member; report against the closest one.
        members = _model_types(model.model_fields["root"].annotation)
        if members:
            yield from min((list(_unknown_keys(m, data, path)) for m in members), key=len)
        return
    if not isinstance(data, dict) or model.model_config.get("extra") == "allow" or not model.model_fields:
        return
    by_key = {}
    for name, f in model.model_fields.items():
        by_key[f.alias or name] = f
        by_key[name] = f
    for key, value in data.items():
        field = by_key.get(key)
        if field is None:
            yield f"{path}.{key}".lstrip(".")
            continue
        nested = _model_types(field.annotation)
        if nested:
            # A union (e.g. AuthorizationPolicy's selector/targetRef variants): the best-fitting member.
            yield from min((list(_unknown_keys(m, value, f"{path}.{key}")) for m in nested), key=len)


def _crd_model(api_version: str, kind: str, fast: bool = True) -> type[pydantic.BaseModel] | None:
    module = _CRD_MODULES.get(api_version)
    if module is None:
        return None
    return getattr(_crd_module(module) if fast else importlib.import_module(module), kind, None)


@functools.cache
def _crd_module(name: str) -> types.ModuleType:
    """One cloudcoil models module, without the package ``__init__`` files above it.

    ``import cloudcoil.models.istio.networking.v1`` runs ``cloudcoil/models/istio/__init__.py``,
    which imports every API version of every Istio group (v1alpha3, v1beta1, extensions ...):
    thousands of pydantic models, seconds of start-up, for the four modules used here. The module
    file is executed on its own under its real name (registered in ``sys.modules`` first, so
    pydantic resolves its forward references there, and a later regular import reuses it).
    """
    if name in sys.modules:
        return sys.modules[name]
    root = importlib.util.find_spec("cloudcoil.models")
    assert root is not None and root.submodule_search_locations
    relative = name.removeprefix("cloudcoil.models.").split(".")
    path = Path(next(iter(root.submodule_search_locations)), *relative[:-1], f"{relative[-1]}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def check(objects: list[dict[str, Any]], kubernetes_version: str, fast: bool = True) -> list[Violation]:
    """Schema violations of every object; ``fast=False`` loads every schema afresh for each object."""
    out: list[Violation] = []
    for obj in objects:
        api, kind, where = obj.get("apiVersion", ""), obj.get("kind", ""), ref(obj)
        if api == "operator.tigera.io/v1":
            schema = CALICO_SCHEMAS.get(kind)
            if schema is None:
                out.append(Violation("schema", where, f"no schema for {api} {kind}"))
                continue
            for err in jsonschema.Draft202012Validator(schema).iter_errors(obj):
                at = ".".join(str(p) for p in err.absolute_path) or "(root)"
                out.append(Violation("schema", where, f"{at}: {err.message}"))
            continue
        group = api.split("/")[0] if "/" in api else ""
        if "." in group and not group.endswith(".k8s.io"):
            model = _crd_model(api, kind, fast)
            if model is None:
                out.append(Violation("schema", where, f"no schema for {api} {kind}"))
                continue
            try:
                model.model_validate(obj)
            except pydantic.ValidationError as err:
                for e in err.errors():
                    out.append(Violation("schema", where, f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"))
            for key in _unknown_keys(model, obj, ""):
                out.append(Violation("schema", where, f"{key}: unknown field"))
            continue
        out += _core_errors(obj, kubernetes_version, where, fast)
    return out


def _core_errors(obj: dict[str, Any], kubernetes_version: str, where: str, fast: bool = True) -> list[Violation]:
    """Every schema error of a core object (``kubernetes_validate.validate`` stops at the first);
    ``fast=False`` reads the schema afresh for the object instead of the validator kept per kind."""
    api, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    build = _core_validator if fast else _core_validator.__wrapped__
    try:
        validator = build(kubernetes_version, api, kind)
    except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError) as err:
        return [Violation("schema", where, f"no schema for {api} {kind} at Kubernetes {kubernetes_version}: {err}")]
    out = []
    for problem in sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path]):
        at = ".".join(str(p) for p in problem.absolute_path) or "(root)"
        # A message about a whole object or list repeats it; name the rule it breaks instead.
        message = problem.message if len(problem.message) <= 200 else f"does not satisfy the schema's {problem.validator!r} rule"
        out.append(Violation("schema", where, f"{at}: {message}"))
    return out


def _minor(version: str) -> tuple[int, ...]:
    """``1.35`` as (1, 35): kubernetes-validate compares versions as strings, where "1.9" > "1.37"."""
    from kubernetes_validate.utils import major_minor

    return tuple(int(x) for x in major_minor(version.removeprefix("v")).split("."))


def kubernetes_versions() -> list[str]:
    """The Kubernetes releases whose schemas ``kubernetes-validate`` carries, as ``1.N``."""
    from kubernetes_validate.utils import all_versions, major_minor

    return sorted({major_minor(v) for v in all_versions()}, key=_minor)


def known_version(version: str) -> str:
    """``version`` (``1.N``, ``v1.N`` or ``1.N.P``) as ``1.N`` when schemas exist for it; else ValueError."""
    known = kubernetes_versions()
    m = re.fullmatch(r"v?(\d+\.\d+)(?:\.\d+)?", version.strip())
    if not m or m[1] not in known:
        raise ValueError(f"{version!r} is unknown: schemas exist for {known[0]} to {known[-1]}")
    return m[1]


@functools.cache
def _core_validator(kubernetes_version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator:
    """The strict schema ``kubernetes_validate.validate`` picks for this version, apiVersion and kind
    (the newest release it carries that is not newer than the one asked for)."""
    from kubernetes_validate import utils

    wanted = utils.major_minor(kubernetes_version.removeprefix("v"))
    older = [v for v in utils.all_versions() if _minor(v) <= _minor(wanted)]
    if not older or _minor(wanted) > _minor(utils.latest_version()):
        raise kubernetes_validate.SchemaNotFoundError(version=wanted, kind=kind, api_version=api_version)
    version = older[-1]
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    try:
        schema = utils.schema_contents(f"{folder}/{kind.lower()}-{group_version}.json", kubernetes_version)
    except FileNotFoundError:
        raise kubernetes_validate.SchemaNotFoundError(version=wanted, kind=kind, api_version=api_version) from None
    definitions = utils.schema_contents(f"{folder}/_definitions.json", kubernetes_version)
    registry = Resource.from_contents(definitions) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


#: Core kinds every stack declares: their validators are built while the stack renders.
_COMMON_CORE_KINDS = (
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)


def _warm(kubernetes_version: str) -> None:
    """Load what ``check`` needs before the objects exist: every CRD model module and the
    validators of the common core kinds. A version without schemas is left to ``check`` to report."""
    for module in _CRD_MODULES.values():
        _crd_module(module)
    for api_version, kind in _COMMON_CORE_KINDS:
        try:
            _core_validator(kubernetes_version, api_version, kind)
        except (kubernetes_validate.SchemaNotFoundError, kubernetes_validate.InvalidSchemaError):
            return


class CheckBeside:
    """``check`` in a forked process, started before the objects exist.

    Loading the CRD models and the core schemas is most of the check and needs no object, so the
    worker does it while the caller renders the stack; ``submit`` hands it the objects, and
    ``result`` waits for its answer while the caller has gone on with other checks. Where fork is
    unavailable, or the worker dies, the check runs in the caller: the answer is always ``check``'s.
    Use it as a context manager, so a worker whose objects never come is ended.
    """

    def __init__(self, kubernetes_version: str) -> None:
        self.kubernetes_version = kubernetes_version
        self.objects: list[dict[str, Any]] | None = None
        self.worker: multiprocessing.process.BaseProcess | None = None
        if (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
            return
        self.conn, theirs = multiprocessing.Pipe()

        def work() -> None:
            gc.freeze()  # the inherited heap is no garbage of this worker's: its collector skips it
            _warm(kubernetes_version)
            theirs.send(check(theirs.recv(), kubernetes_version))

        self.worker = multiprocessing.get_context("fork").Process(target=work, daemon=True)
        self.worker.start()
        theirs.close()

    def submit(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects
        if self.worker is not None:
            try:
                self.conn.send(objects)
            except OSError:  # the worker is gone: result() checks here
                self.close()

    def result(self) -> list[Violation]:
        assert self.objects is not None, "submit the objects first"
        if self.worker is not None:
            try:
                return self.conn.recv()
            except EOFError:
                pass
            finally:
                self.close()
        return check(self.objects, self.kubernetes_version)

    def close(self) -> None:
        if self.worker is None:
            return
        self.conn.close()
        if self.worker.is_alive():
            self.worker.terminate()
        self.worker.join()
        self.worker = None

    def __enter__(self) -> CheckBeside:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
