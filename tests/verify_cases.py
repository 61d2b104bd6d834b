"""Hand-written manifests with known answers, for the offline.verify tests."""

from __future__ import annotations

import copy
from typing import Any


def namespace(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def deployment(
    ns: str, app: str, image: str = "nginx:1.27", version: str = "v1", sa: str | None = None, **labels: str
) -> dict[str, Any]:
    pod_labels = {"app": app, "version": version, **labels}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{app}-{version}", "namespace": ns},
        "spec": {
            "selector": {"matchLabels": {"app": app, "version": version}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "serviceAccountName": sa or app,
                    "containers": [{"name": "main", "image": image, "ports": [{"containerPort": 8080}]}],
                },
            },
        },
    }


def netpol(ns: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


DENY_ALL = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
#: The seed article's "deny-all": its empty peer list admits every source.
SEED_DENY_ALL = {"podSelector": {"matchLabels": {"role": "frontend"}}, "policyTypes": ["Ingress"], "ingress": [{"from": []}]}


def shop(*policies: dict[str, Any]) -> list[dict[str, Any]]:
    """Namespace shop with frontend (role: frontend), api and db, plus the given policies."""
    return copy.deepcopy(
        [
            namespace("shop"),
            deployment("shop", "frontend", role="frontend"),
            deployment("shop", "api"),
            deployment("shop", "db"),
            *policies,
        ]
    )


def allow(ns: str, src: str, dst: str, port: int) -> list[dict[str, Any]]:
    """Ingress on dst and egress on src for one call."""
    return [
        netpol(
            ns,
            f"{dst}-from-{src}",
            {
                "podSelector": {"matchLabels": {"app": dst}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"app": src}}}], "ports": [{"protocol": "TCP", "port": port}]}
                ],
            },
        ),
        netpol(
            ns,
            f"{src}-to-{dst}",
            {
                "podSelector": {"matchLabels": {"app": src}},
                "policyTypes": ["Egress"],
                "egress": [
                    {"to": [{"podSelector": {"matchLabels": {"app": dst}}}], "ports": [{"protocol": "TCP", "port": port}]}
                ],
            },
        ),
    ]
