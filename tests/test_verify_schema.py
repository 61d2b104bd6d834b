"""offline.verify.schema: core objects via kubernetes-validate, Istio/cert-manager via their CRD models, Calico by hand."""

from __future__ import annotations

import copy

from verify_cases import deployment

from offline.verify.schema import check


def test_every_dev_object_is_valid(stack) -> None:
    assert check(stack("dev").manifests(), "1.34") == []


def test_unknown_field_in_a_core_object() -> None:
    d = deployment("shop", "api")
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    (v,) = check([d], "1.34")
    assert v.rule == "schema" and v.object == "Deployment shop/api-v1" and "imagePullPolcy" in v.message


def test_wrong_type_in_a_core_object() -> None:
    d = deployment("shop", "api")
    d["spec"]["replicas"] = "two"
    (v,) = check([d], "1.34")
    assert v.message.startswith("spec.replicas:")


def _dev_kind(stack, kind):
    return copy.deepcopy(next(o for o in stack("dev").manifests() if o["kind"] == kind))


def test_unknown_and_wrong_fields_in_istio_objects(stack) -> None:
    vs = _dev_kind(stack, "VirtualService")
    vs["spec"]["http"][0]["retry"] = {"attempts": 1}
    assert [v.message for v in check([vs], "1.34")] == ["spec.http[0].retry: unknown field"]
    ap = next(o for o in stack("dev").manifests() if o["kind"] == "AuthorizationPolicy" and o["spec"])
    ap = copy.deepcopy(ap)
    ap["spec"]["action"] = "PERMIT"
    assert check([ap], "1.34") and "action" in check([ap], "1.34")[0].message


def test_cert_manager_and_calico_objects(stack) -> None:
    cert = _dev_kind(stack, "Certificate")
    cert["spec"]["dnsName"] = ["x"]
    assert [v.message for v in check([cert], "1.34")] == ["spec.dnsName: unknown field"]
    inst = _dev_kind(stack, "Installation")
    inst["spec"]["calicoNetwork"]["ipPools"][0]["encapsulation"] = "GRE"
    (v,) = check([inst], "1.34")
    assert v.message.startswith("spec.calicoNetwork.ipPools.0.encapsulation:")


def test_unknown_api_is_reported() -> None:
    (v,) = check([{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}], "1.34")
    assert v.message == "no schema for example.com/v1 Widget"


def test_every_error_of_a_core_object_is_reported_not_the_first_only() -> None:
    d = deployment("shop", "api")
    d["spec"]["replicas"] = "two"
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    d["spec"]["paused"] = "no"
    found = check([d], "1.34")
    at = sorted(v.message.split(":")[0] for v in found)
    assert at == [
        "spec.paused",
        "spec.replicas",
        "spec.template.spec.containers.0",
        "spec.template.spec.containers.0.ports.0.containerPort",
    ]
    assert len(found) == len(set(found)) and all(v.object == "Deployment shop/api-v1" for v in found)
    assert all(len(v.message) < 300 for v in found)


def test_the_schema_follows_the_kubernetes_version() -> None:
    # Older releases carry older schemas: the newest one not newer than the version asked for.
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}
    assert check([ns], "1.25") == [] and check([ns], "1.37") == []
    (v,) = check([ns], "1.99")
    assert v.message.startswith("no schema for v1 Namespace at Kubernetes 1.99")
