"""STAND-IN operators: the parts of tigera-operator and cert-manager that the stack waits on.

No container runs on the local control plane, so nothing would ever set the conditions the stack
awaits (``pulumi.com/waitFor: condition=Ready``). This loop plays those parts, each only after
``DELAY`` seconds, so the waits of pulumi-kubernetes are really exercised:

- ``operator.tigera.io/v1`` Installation: first what tigera-operator's defaulting writes back into
  its spec (tests/data/tigera_operator.yaml, read in tigera/operator v1.42.3: every IP pool
  default, the other spec defaults), as a JSON merge patch under the real operator's field manager
  ``operator``, exactly when the real one would (something is missing); then ``Ready`` (what
  tigera-operator reports once calico-node runs);
- ``cert-manager.io/v1`` ClusterIssuer/Issuer: ``Ready``; a CA issuer only once its secret exists;
- ``cert-manager.io/v1`` Certificate: once its issuer is Ready, a real certificate (``cryptography``)
  signed by that issuer (self-signed, or the CA in the issuer's secret) in the ``kubernetes.io/tls``
  Secret it names, with ``ca.crt``; then ``Ready``.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from . import pki

#: What the real tigera-operator writes, with sources: never the program's own constants.
TIGERA_FACTS = Path(__file__).resolve().parents[3] / "tests" / "data" / "tigera_operator.yaml"

#: Seconds after creation before a stand-in reports Ready.
DELAY = 2.0
#: Where cluster-scoped issuers read their secrets (the chart's clusterResourceNamespace).
CLUSTER_RESOURCE_NAMESPACE = "cert-manager"
INSTALLATIONS = "/apis/operator.tigera.io/v1/installations"
CERT_MANAGER = "/apis/cert-manager.io/v1"


def _ready(obj: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in obj.get("status", {}).get("conditions", []))


def _condition(reason: str, message: str) -> dict:
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "Ready", "status": "True", "reason": reason, "message": message, "lastTransitionTime": now}


@functools.cache
def tigera_facts() -> dict:
    return yaml.safe_load(TIGERA_FACTS.read_text())


def _set_missing(obj: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        obj = obj.setdefault(p, {})
    obj.setdefault(leaf, copy.deepcopy(value))


def tigera_defaulted(spec: dict) -> dict:
    """The Installation spec after tigera-operator's defaulting (kind mode: Calico CNI), a new dict."""
    facts = tigera_facts()
    out = copy.deepcopy(spec)
    calico_cni = (out.get("cni") or {}).get("type", "Calico") == "Calico"
    if calico_cni:
        for row in facts["installation_defaults"]:
            _set_missing(out, row["field"], row["value"])
    pools = (out.get("calicoNetwork") or {}).get("ipPools") or []
    for pool in pools:
        for row in facts["pool_defaults"]:
            if row["field"] == "encapsulation" and not calico_cni:
                pool.setdefault("encapsulation", "None")
            elif row["field"] == "name" and sum(":" not in p["cidr"] for p in pools) != 1:
                continue
            else:
                pool.setdefault(row["field"], copy.deepcopy(row["value"]))
    return out


def merge_patch(old: dict, new: dict) -> dict:
    """The JSON merge patch (RFC 7386) taking ``old`` to ``new``, where ``new`` only adds: lists whole."""
    patch = {}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif isinstance(value, dict) and isinstance(old[key], dict):
            if sub := merge_patch(old[key], value):
                patch[key] = sub
        elif value != old[key]:
            patch[key] = value
    return patch


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Operators:
    def __init__(self, kube: Any, log=print, delay: float = DELAY, interval: float = 0.3) -> None:
        self.kube = kube
        self.log = log
        self.delay = delay
        self.interval = interval
        self.first_seen: dict[str, float] = {}
        self.ready_at: dict[str, float] = {}
        #: Every defaulting patch sent to an Installation: {"name", "patch"}.
        self.defaulted: list[dict] = []
        self._stop = threading.Event()
        self._last_error: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="stand-in-operators", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.reconcile()
            except Exception as err:
                # Said once per kind of error, not on every poll (the API server may be stopped on purpose).
                text = str(err).split(" for url")[0]
                if text != self._last_error:
                    self.log(f"stand-in operators: {text}")
                self._last_error = text
            else:
                self._last_error = None

    def _due(self, obj: dict) -> bool:
        uid = obj["metadata"]["uid"]
        self.first_seen.setdefault(uid, time.monotonic())
        return time.monotonic() - self.first_seen[uid] >= self.delay

    def _list(self, path: str) -> list[dict]:
        try:
            return self.kube.get(path).get("items", [])
        except Exception as err:
            if "404" in str(err):  # the CRD is not installed (yet)
                return []
            raise

    def _set_ready(self, path: str, obj: dict, reason: str, message: str) -> None:
        status = {**obj.get("status", {}), "conditions": [_condition(reason, message)]}
        self.kube.send("PATCH", f"{path}/status", {"status": status}, content_type="application/merge-patch+json")
        self.ready_at[obj["metadata"]["uid"]] = time.monotonic()
        self.log(f"stand-in operators: {obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']} Ready")

    def _default_installation(self, inst: dict) -> None:
        """What the real operator's controllers do first: write their defaults into the spec."""
        spec = inst.get("spec") or {}
        patch = merge_patch(spec, tigera_defaulted(spec))
        if not patch:
            return
        self.kube.send(
            "PATCH", f"{INSTALLATIONS}/{inst['metadata']['name']}", {"spec": patch},
            content_type="application/merge-patch+json", headers={"User-Agent": tigera_facts()["user_agent"]},
        )  # fmt: skip
        self.defaulted.append({"name": inst["metadata"]["name"], "patch": patch})
        self.log(f"stand-in operators: Installation {inst['metadata']['name']} defaulted ({', '.join(sorted(patch))})")

    def reconcile(self) -> None:
        for inst in self._list(INSTALLATIONS):
            self._default_installation(inst)
            if not _ready(inst) and self._due(inst):
                self._set_ready(f"{INSTALLATIONS}/{inst['metadata']['name']}", inst, "AllComponentsAvailable", "stand-in")
        issuers: dict[tuple[str, str], dict] = {}
        for kind, plural in (("ClusterIssuer", "clusterissuers"), ("Issuer", "issuers")):
            for iss in self._list(f"{CERT_MANAGER}/{plural}"):
                ns = iss["metadata"].get("namespace")
                issuers[(kind, f"{ns}/{iss['metadata']['name']}" if ns else iss["metadata"]["name"])] = iss
                if _ready(iss) or not self._due(iss):
                    continue
                spec = iss.get("spec", {})
                if "ca" in spec and self._secret(ns or CLUSTER_RESOURCE_NAMESPACE, spec["ca"]["secretName"]) is None:
                    continue
                if "acme" in spec:
                    continue  # an ACME CA is not reachable here
                path = f"{CERT_MANAGER}/namespaces/{ns}/issuers/" if ns else f"{CERT_MANAGER}/clusterissuers/"
                self._set_ready(path + iss["metadata"]["name"], iss, "KeyPairVerified", "stand-in")
        for cert in self._list(f"{CERT_MANAGER}/certificates"):
            if _ready(cert) or not self._due(cert):
                continue
            ref = cert["spec"]["issuerRef"]
            ns = cert["metadata"]["namespace"]
            kind = ref.get("kind", "Issuer")
            issuer = issuers.get((kind, ref["name"] if kind == "ClusterIssuer" else f"{ns}/{ref['name']}"))
            if issuer is None or not _ready(issuer):
                continue
            self._issue(cert, issuer, ns if kind == "Issuer" else CLUSTER_RESOURCE_NAMESPACE)
            self._set_ready(f"{CERT_MANAGER}/namespaces/{ns}/certificates/{cert['metadata']['name']}", cert, "Ready", "stand-in")

    def _secret(self, namespace: str, name: str) -> dict | None:
        try:
            return self.kube.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except Exception as err:
            if "404" in str(err):
                return None
            raise

    def _issue(self, cert: dict, issuer: dict, issuer_secret_ns: str) -> None:
        spec = cert["spec"]
        ns = cert["metadata"]["namespace"]
        signer = None
        if "ca" in issuer["spec"]:
            ca = self._secret(issuer_secret_ns, issuer["spec"]["ca"]["secretName"]) or {}
            data = ca.get("data", {})
            signer = pki.load(base64.b64decode(data["tls.crt"]), base64.b64decode(data["tls.key"]))
        crt, key = pki.issue(
            spec.get("commonName") or (spec.get("dnsNames") or [cert["metadata"]["name"]])[0],
            issuer=signer,
            is_ca=bool(spec.get("isCA")),
            dns=tuple(spec.get("dnsNames") or ()),
        )
        ca_pem = pki.cert_pem(signer[0]) if signer else pki.cert_pem(crt)
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {
                "name": spec["secretName"],
                "namespace": ns,
                "annotations": {"cert-manager.io/certificate-name": cert["metadata"]["name"]},
                "labels": {"mesh-platform.dev/stand-in": "true"},
            },
            "data": {"tls.crt": _b64(pki.cert_pem(crt)), "tls.key": _b64(pki.key_pem(key)), "ca.crt": _b64(ca_pem)},
        }
        if self._secret(ns, spec["secretName"]) is None:
            self.kube.send("POST", f"/api/v1/namespaces/{ns}/secrets", secret)
        else:
            self.kube.send("PUT", f"/api/v1/namespaces/{ns}/secrets/{spec['secretName']}", secret)
