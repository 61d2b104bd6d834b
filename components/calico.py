"""Calico through its CRD chart and the tigera-operator chart, and the gate that says its networking works.

Install order
-------------
Since Calico 3.32 the tigera-operator chart carries no CRDs: they come from a chart of their own,
``crd.projectcalico.org.v1`` (the crd.projectcalico.org/v1 and operator.tigera.io/v1 CRDs), which
upstream installs before the operator chart, and upgrades before it too (projectcalico/calico
charts/tigera-operator/README.md@v3.32.1 L27-L30, L107-L110). Here it is a Helm release of its own,
``calico-crds``, at the same version as the operator chart, and the operator release and the
Installation wait for it (``depends_on``): on ``pulumi up`` the CRDs are created, and on a version
bump upgraded, before the operator that reads them.

What happens to the CRDs: that chart keeps them in ``templates/``, not in Helm's ``crds/``
directory (charts/crd.projectcalico.org.v1/README.md@v3.32.1), so Helm treats them like any other
object of the release: ``helm upgrade`` updates them, and uninstalling the release deletes them,
and with them every Calico resource still in the cluster. ``pulumi destroy`` deletes that release
last (everything else of Calico's waits for it), which is what a teardown wants. Its release name
and namespace must never change: either makes Pulumi replace the release, and deleting the old
one deletes the CRDs. (tigera-operator itself also creates any of them that is missing and
rewrites them with the copies it embeds, the same files at the same version: the chart's
``manageCRDs: true``, values.yaml@v3.32.1 L114; tigera/operator cmd/main.go@v1.42.3 L302-L325.)
The operator then runs in its default mode, the crd.projectcalico.org/v1 API (tigera/operator
pkg/apis/version.go@v1.42.3 L67-L78: the v3 API only when no crd.projectcalico.org group exists).

How the readiness gate works
----------------------------
The operator chart only installs the operator (``installation.enabled: false``); the stack owns
the ``Installation`` named ``default`` itself. That object is what turns networking on: the operator
reads it, rolls out calico-node (the CNI plugin plus Felix) on every node and typha, and reports back
in the Installation's ``status.conditions``. The operator sets ``Ready`` only when its TigeraStatus
``calico`` is Available, i.e. when calico-node is running on every node, which is also when the
nodes turn Ready and CoreDNS can be scheduled.

The Installation carries ``pulumi.com/waitFor: condition=Ready``, so pulumi-kubernetes does not
finish creating it until that condition is True (or fails after ``customTimeouts.create``).
``Calico.ready`` *is* that Installation: every component that needs pod networking depends on it,
so nothing of theirs is sent to the cluster before Calico's networking is up. No sleep is involved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from mesh_platform.kube import TOKEN, helm_release
from mesh_platform.settings import ChartsSettings
from mesh_platform.versions import CALICO_CRDS_CHART

NAMESPACE = "tigera-operator"
#: The Helm release of the CRD chart (its record lives in ``NAMESPACE``; the CRDs are cluster-wide).
#: Never renamed: a new name replaces the release, and deleting the old one deletes the CRDs.
CRDS_RELEASE = "calico-crds"
#: Every field tigera-operator fills into an IPv4 pool that lacks it, with its value; with all of
#: them sent the operator finds nothing to add and never writes the pool list back. It would write
#: the WHOLE list (``calicoNetwork.ipPools`` has no list type in the CRD, so it is atomic), as field
#: manager ``operator``, and every later apply that changes the Installation would then fail with
#: 409 "conflict with operator ... .spec.calicoNetwork.ipPools". tests/data/tigera_operator.yaml
#: records each default with its source (tigera/operator v1.42.3, the operator of the v3.32.1 chart:
#: pkg/controller/ippool/defaults.go, the same defaults as v1.40.15's).
POOL_DEFAULTS = {
    "name": "default-ipv4-ippool",
    "natOutgoing": "Enabled",
    "nodeSelector": "all()",
    "blockSize": 26,
    "allowedUses": ["Workload", "Tunnel"],
    "disableNewAllocations": False,
    "assignmentMode": "Automatic",
    # The CRD's own default (the API server fills it in).
    "disableBGPExport": False,
}
#: Felix and Typha Prometheus ports, opened when metrics are on.
FELIX_METRICS_PORT = 9091
TYPHA_METRICS_PORT = 9093


@dataclass(frozen=True)
class CalicoArgs:
    version: str
    mode: Literal["kind", "eks"]
    """kind: Calico is the CNI (VXLAN pool); eks: AWS VPC CNI stays, Calico enforces policy only."""
    pod_subnet: str
    encapsulation: str
    ready_timeout_minutes: int
    flow_visibility: bool = False
    """Goldmane (flow aggregation) and Whisker (flow UI), Calico 3.30+."""
    metrics: bool = False
    """Felix and Typha Prometheus endpoints."""
    charts: ChartsSettings = field(default_factory=ChartsSettings)
    """Where the charts come from (``charts`` in the stack: a mirror, or one repository per chart)."""


def installation_spec(args: CalicoArgs) -> dict:
    """The ``Installation`` spec for the chosen mode."""
    if args.mode == "eks":
        # Policy-only mode: the VPC CNI keeps assigning pod IPs, Calico enforces NetworkPolicy.
        spec: dict = {"kubernetesProvider": "EKS", "cni": {"type": "AmazonVPC"}, "calicoNetwork": {"bgp": "Disabled"}}
    else:
        spec = {
            "cni": {"type": "Calico"},
            "calicoNetwork": {
                # VXLAN needs no BGP peering between kind's containers.
                "bgp": "Disabled" if args.encapsulation.startswith("VXLAN") else "Enabled",
                "ipPools": [{"cidr": args.pod_subnet, "encapsulation": args.encapsulation, **POOL_DEFAULTS}],
            },
        }
    if args.metrics:
        spec["nodeMetricsPort"] = FELIX_METRICS_PORT
        spec["typhaMetricsPort"] = TYPHA_METRICS_PORT
    return spec


class Calico(pulumi.ComponentResource):
    ready: k8s.apiextensions.CustomResource
    """The Installation; created only once its Ready condition is True."""

    def __init__(self, name: str, args: CalicoArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TOKEN}:Calico", name, None, opts)
        namespace = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={
                "name": NAMESPACE,
                # The operator runs host-networked with host paths: only 'privileged' admits it.
                "labels": {"pod-security.kubernetes.io/enforce": "privileged"},
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Calico's CRDs first: the operator, and the Installation below, need them (module docstring).
        crds = helm_release(
            f"{name}-crds",
            release=CRDS_RELEASE,
            chart=CALICO_CRDS_CHART,
            # Released together with the operator chart, at the same version.
            version=args.version,
            repo=args.charts.repo(CALICO_CRDS_CHART),
            namespace=NAMESPACE,
            values={},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace]),
        )
        operator = helm_release(
            f"{name}-operator",
            release="tigera-operator",
            chart="tigera-operator",
            version=args.version,
            repo=args.charts.repo("tigera-operator"),
            namespace=NAMESPACE,
            values={
                # The stack owns the Installation (below) so that it can wait on its status.
                "installation": {"enabled": False},
                "apiServer": {"enabled": False},
                "goldmane": {"enabled": False},
                "whisker": {"enabled": False},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[namespace, crds]),
        )
        timeout = f"{args.ready_timeout_minutes}m"
        self.ready = k8s.apiextensions.CustomResource(
            f"{name}-installation",
            api_version="operator.tigera.io/v1",
            kind="Installation",
            metadata={"name": "default", "annotations": {"pulumi.com/waitFor": "condition=Ready"}},
            spec=installation_spec(args),
            opts=pulumi.ResourceOptions(
                parent=self,
                # Its CRD comes from the CRD chart; the operator acts on it.
                depends_on=[crds, operator],
                custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
            ),
        )
        # A CustomResource's outputs are attributes the SDK adds at run time (no type declares them).
        outputs: dict = {"installation": self.ready.metadata["name"]}  # type: ignore[attr-defined]
        if args.flow_visibility:
            # Goldmane aggregates flow logs from Felix; Whisker is the UI on top of it.
            for kind in ("Goldmane", "Whisker"):
                k8s.apiextensions.CustomResource(
                    f"{name}-{kind.lower()}",
                    api_version="operator.tigera.io/v1",
                    kind=kind,
                    metadata={"name": "default"},
                    spec={},
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[self.ready]),
                )
            outputs["whisker"] = "calico-system/whisker"
        self.register_outputs(outputs)
