"""Every version the stack deploys, pinned once, and the matrix of what may be combined.

Chart versions and images (tag plus digest where the upstream publishes one) are named here and
nowhere else: components and settings defaults read them, never hard-code one. The compatibility
matrix below says which pins and stack values go together, each row with the upstream source it
comes from; ``mesh_platform/settings.py`` refuses a stack outside it.

Bumping a pin: move the pin, then the row it falls under (or add one, with its source), then the
recorded chart values in tests/data/chart_values.yaml. tests/test_settings.py and
tests/test_chart_values.py fail until all three agree.
"""

from __future__ import annotations

from typing import NamedTuple

# --- Pins: the one place where versions of deployed things are named --------------------------

#: The kind release whose node images the stack accepts (``KIND_NODE_IMAGES`` below).
KIND_VERSION = "v0.33.0"
#: The Kubernetes minor a stack gets when it names none: the newest that every component supports
#: (``KUBERNETES_SUPPORT`` below; Calico 3.32 stops at 1.36).
KUBERNETES_VERSION = "1.36"
#: Calico 3.32: the tigera-operator chart and, released with it at the same version, the
#: ``crd.projectcalico.org.v1`` chart that carries Calico's CRDs since 3.32 (the operator chart has
#: none any more). Both versions carry a leading ``v``; both are in ``CALICO_REPO`` (projectcalico/
#: calico release/internal/utils/utils.go@v3.32.1:L60-L69, L97-L100: the charts released, the
#: repository; Makefile@v3.32.1:L142-L158: each packaged at the release's version; tigera/docs
#: calico_versioned_docs/version-3.32/getting-started/kubernetes/helm.mdx: `--version v3.32.1`).
CALICO_CHART_VERSION = "v3.32.1"
CALICO_REPO = "https://docs.tigera.io/calico/charts"
#: The chart of Calico's CRDs (crd.projectcalico.org/v1 and operator.tigera.io/v1), installed before
#: the operator chart (charts/tigera-operator/README.md@v3.32.1:L27-L30, "Installing" step 2).
CALICO_CRDS_CHART = "crd.projectcalico.org.v1"
#: Istio's base/cni/istiod/gateway charts share one version (no leading ``v``). 1.31.4 is the newest
#: patch of the newest minor whose chart sources and CRDs are stored (istio.io/api and istio.io/client-go
#: v1.31.4 on the Go module proxy); the charts were read at istio/istio 1.31.0-rc.0, the nearest stored
#: tag (tests/data/chart_values.yaml). 1.31 charts default to docker.io/istio images (istio/release-builder
#: release-1.31 release/build.sh:54 ``DOCKER_HUB``; 1.30's defaulted to registry.istio.io/release,
#: release-1.30 release/build.sh:50); the stack sets no ``global.hub``.
ISTIO_VERSION = "1.31.4"
#: The oldest Istio the stack installs, and why: the stack creates Istio config as soon as istiod's
#: Deployment is available, which before 1.30.4 could be before its webhook server on :15017 accepted
#: connections (istio#61049; istio/istio releasenotes/notes/61049.yaml, on release-1.30 after the 1.30.3
#: tag and in 1.31.0-rc.0; istio.io announcing-1.30.4).
ISTIO_MIN_VERSION = "1.30.4"
ISTIO_MIN_VERSION_REASON = (
    "below it istiod can report ready before its webhook server accepts connections (istio#61049, "
    "fixed in 1.30.4), and the stack creates Istio config as soon as istiod is ready"
)
#: Istio's chart repository. The old bucket, istio-release.storage.googleapis.com/charts, is removed
#: in December 2026 (24-hour outage test from 2026-12-08 15:00 UTC) and never carried 1.31+
#: (istio.io blog "retirement-of-gcp", 2026-08-21; the 1.31 upgrade notes); ``RETIRED_CHART_HOSTS``.
ISTIO_REPO = "https://blob.istio.io/istio-release/charts"
#: Chart repository hosts that no longer serve the charts: a stack naming one is refused, with the
#: repository to use instead.
RETIRED_CHART_HOSTS: dict[str, str] = {
    "istio-release.storage.googleapis.com": "retired by Istio in December 2026 (istio.io blog retirement-of-gcp); "
    f"use {ISTIO_REPO}",
}
#: cert-manager v1.21.2 (2026-09-10 on the Go module proxy), a security release: the ACME and Vault
#: issuers no longer copy untrusted response bodies into status and Events, ACME bodies are capped at
#: 16 MiB, ambient AWS credential use is tightened for namespaced Vault Issuers, Go CVE fixes ("All
#: users should upgrade"; the v1.21.2 release notes, read as gitlab.com/sylva-projects/sylva-core merge
#: request 9292 reproduces them). Its chart and CRDs equal v1.21.1's (tests/data/chart_values.yaml).
CERT_MANAGER_VERSION = "v1.21.2"
#: istio-csr's release built against the Istio minor in use (``ISTIO_CSR_FOR_ISTIO`` below).
ISTIO_CSR_VERSION = "v0.17.0"
JETSTACK_REPO = "https://charts.jetstack.io"
#: prometheus chart 29.25.0, Prometheus v3.13.2 (Chart.yaml:L4-L5 @prometheus-29.25.0): the newest stored
#: chart of the 3.13 LTS line, supported until 2027-07-31; a non-LTS minor gets fixes for its six weeks
#: only (prometheus/docs docs/introduction/release-cycle.md). 29.26.0 and 29.27.0 move to v3.14.0 and
#: change nothing else of the chart (``git diff prometheus-29.25.0 prometheus-29.27.0 -- charts/prometheus``:
#: Chart.yaml, Chart.lock); 27.x ends at 27.52.0 with Prometheus v3.8.1, long out of support. 28.0 moved
#: the default jobs into the ``scrapeConfigs`` map, which the stack unsets (components/observability.py).
PROMETHEUS_CHART_VERSION = "29.25.0"
PROMETHEUS_REPO = "https://prometheus-community.github.io/helm-charts"
#: kiali-server chart, from the range Istio ships for its minor (``KIALI_FOR_ISTIO`` below): Istio 1.31
#: ships 2.27.0, the only 2.27 chart (kiali/helm-charts docs/index.yaml); its chart files equal 2.26.0's
#: (``git diff v2.26.0 v2.27.0 -- kiali-server`` is empty).
KIALI_CHART_VERSION = "2.27.0"
KIALI_REPO = "https://kiali.org/helm-charts"
#: Sample workloads: a static HTTP echo server (no shell, runs as any UID, read-only root works)
#: and curl for the in-mesh client and the callers. Digests: the multi-arch index of each tag.
ECHO_IMAGE = "docker.io/hashicorp/http-echo:1.0.0@sha256:fcb75f691c8b0414d670ae570240cbf95502cc18a9ba57e982ecac589760a186"
#: curl 8.22.0: the newest curlimages/curl tag whose index digest is published in public manifests on
#: 2026-12-04 (the same digest in independent projects' pinned Dockerfiles and scripts); 8.11.1, the
#: previous pin, has 13 published curl vulnerabilities. scripts/e2e.sh runs the same image.
CURL_IMAGE = "docker.io/curlimages/curl:8.22.0@sha256:58adaa4e8dca9c988bae2aba4ab3434a0bb2da16bbe3f92dec39ec7785166777"
#: Jaeger v2 all-in-one (in-memory): receives the mesh's spans over OTLP, serves the UI. 2.21.0: the
#: newest 2.x whose index digest is published (2.22.0, 2026-10-06, is newer; its full digest was not
#: found in any public manifest on 2026-12-04, and a tag is never pinned without one).
JAEGER_IMAGE = "docker.io/jaegertracing/jaeger:2.21.0@sha256:3d0ac795ff98aa04d1be04311d2dac6c25b4bfc8322dc02e53bc5b170c5018c3"

# --- Compatibility matrix: what may be combined, each row with the upstream source it comes from ---

#: Component line → (oldest, newest) Kubernetes minor it supports, and where that is stated.
KUBERNETES_SUPPORT: dict[tuple[str, str], tuple[str, str, str]] = {
    ("istio", "1.31"): ("1.32", "1.36", "istio.io news/releases/1.31.x/announcing-1.31 (officially supported on 1.32 to 1.36)"),
    ("calico", "3.32"): (
        "1.34",
        "1.36",
        "docs.tigera.io calico/3.32 getting-started/kubernetes/requirements (tigera/docs "
        "calico_versioned_docs/version-3.32/_includes/partials/_system-requirements.mdx @f2a2762 L177-L183)",
    ),
    # cert-manager/website content/docs/releases/README.md @776e5db, "Currently supported releases" L24-25:
    # each line ends at the release of the second minor after it (1.21 at 1.23's, 1.20 at 1.22's, planned
    # "~Nov 2026" L31; no v1.22.0 on the Go module proxy on 2026-12-04, so 1.20 is still supported).
    ("certManager", "1.20"): ("1.32", "1.35", "cert-manager/website content/docs/releases/README.md L25, until 1.22 is released"),
    ("certManager", "1.21"): ("1.33", "1.36", "cert-manager/website content/docs/releases/README.md L24, until 1.23 is released"),
}
#: Lines at or past the end of their support, and why: a stack naming one is refused, with the pin to use instead.
#: Istio 1.30: a minor is supported until six weeks after the second minor after it (istio.io
#: docs/releases/supported-releases, support policy). istio.io/api v1.32.0 was published on 2026-10-21
#: (Go module proxy), and Istio's API tags come about a week before the release (v1.31.0 2026-08-24,
#: Istio 1.31.0 2026-08-31; v1.31.1 2026-09-15, announced 2026-09-21), so 1.30's support ends between
#: 2026-12-02 and about 2026-12-09 (istio.io's own table expected "~Nov 2026",
#: data/compatibility/supportStatus.yml). Whatever the day, its charts pull images from
#: registry.istio.io/release (istio/release-builder release-1.30 release/build.sh:50), which Istio
#: retires in December 2026, after a 24-hour outage from 2026-12-08 15:00 UTC (istio.io blog
#: retirement-of-gcp; the 1.31 upgrade notes): a 1.30 stack would stop pulling images within days.
SUPPORT_ENDED: dict[tuple[str, str], str] = {
    ("istio", "1.30"): (
        "Istio 1.30's support ends six weeks after Istio 1.32.0, in early December 2026 (istio.io supported "
        "releases), and its charts pull images from registry.istio.io/release, which Istio retires in "
        "December 2026 (24-hour outage from 2026-12-08)"
    ),
}
#: Istio minor → the istio-csr minor to run with it: istio-csr names no Istio minor it stops working
#: with (cert-manager/istio-csr README.md:26 @v0.17.0: "supports Istio v1.10+"); the istio-csr release
#: built on the nearest Istio APIs is the one. Istio 1.31: v0.17.0, built on istio.io/api v1.30.3
#: (go.mod:19 @v0.17.0; release notes "Updated Istio APIs to v1.30"). Nothing upstream says 1.31 breaks
#: it: istio-csr serves Istio's CA API, and the client Istio's agents call it with is unchanged from
#: 1.30.3 to 1.31.0-rc.0 (istio/istio security/pkg/nodeagent/caclient/providers/citadel/client.go).
ISTIO_CSR_FOR_ISTIO: dict[str, str] = {"1.31": "0.17"}
#: istio-csr minor → the newest Istio minor its upstream end-to-end tests run on: cert-manager/testing
#: config/jobs/cert-manager/istio-csr/cert-manager-istio-csr-presubmits.yaml (ISTIO_VERSION 1.28.7 L160,
#: 1.29.3 L192, 1.30.0 L224; commit 4d9fd46, before v0.17.0) and istio-csr make/test-e2e.mk:15 @v0.17.0
#: (default 1.29.3).
ISTIO_CSR_TESTED_THROUGH: dict[str, str] = {"0.17": "1.30"}
#: Istio minor → (oldest, newest) kiali-server minor: the range Istio's own samples/addons ship on the
#: minor's release branch, from the branch cut on (istio/istio release-1.30 samples/addons/kiali.yaml,
#: 2.22 through 2.26). 1.31: 2.27 only: samples/addons/kiali.yaml@1.31.0-rc.0:L10 (helm.sh/chart
#: kiali-server-2.27.0), rendered by manifests/addons/gen.sh@1.31.0-rc.0:L36 (--version 2.27.0), the
#: file's version since before the release-1.31 cut (3a99d0f, 2026-06-11; cut 2026-07-22) and at the
#: branch's head (a8d7012, 2026-08-20).
KIALI_FOR_ISTIO: dict[str, tuple[str, str]] = {"1.30": ("2.22", "2.26"), "1.31": ("2.27", "2.27")}
#: kind release → the node images it was built with, by digest ("Images pre-built for this
#: release", github.com/kubernetes-sigs/kind/releases/tag/v0.33.0).
KIND_NODE_IMAGES: dict[str, dict[str, str]] = {
    "v0.33.0": {
        "1.37": "kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
        "1.36": "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
        "1.35": "kindest/node:v1.35.8@sha256:07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
        # v1.34.11 is in the release too; not offered: Kubernetes 1.34 reached its upstream end of
        # life on 2026-10-27 (kubernetes.io/releases/1.34).
    },
}
#: kind v0.33.0's image for the default Kubernetes minor.
KIND_NODE_IMAGE = KIND_NODE_IMAGES[KIND_VERSION][KUBERNETES_VERSION]
#: EKS minor → (end of standard support, end of extended support), ISO dates (UTC), from the
#: "Amazon EKS Kubernetes release calendar" of docs.aws.amazon.com eks/latest/userguide/
#: kubernetes-versions: 14 months of standard support from the EKS release, then 12 months of
#: extended support, billed per cluster hour from the start (UTC) of the day standard support ends.
#: 1.36: EKS release 2026-06-02; its row as copies of that calendar dated 2026-08-06 give it.
#: A stack on a version in extended support is refused unless ``cluster.eks.allowExtendedSupport``
#: (mesh_platform/settings.py); one past the end of extended support, always.
EKS_VERSIONS: dict[str, tuple[str, str]] = {
    "1.33": ("2026-07-29", "2027-07-29"),
    "1.34": ("2026-12-02", "2027-12-02"),
    "1.35": ("2027-03-27", "2028-03-27"),
    "1.36": ("2027-08-02", "2028-08-02"),
}


class Chart(NamedTuple):
    version: str
    """The pin: what a stack installs unless it names another version."""
    repo: str
    """The Helm repository it comes from when ``charts`` names no mirror for it."""


#: Every chart the stack installs, by name: the one list of them. ``charts.repos`` accepts exactly
#: these names; the local control plane's stand-ins and the recorded chart values follow it.
CHARTS: dict[str, Chart] = {
    CALICO_CRDS_CHART: Chart(CALICO_CHART_VERSION, CALICO_REPO),
    "tigera-operator": Chart(CALICO_CHART_VERSION, CALICO_REPO),
    "base": Chart(ISTIO_VERSION, ISTIO_REPO),
    "cni": Chart(ISTIO_VERSION, ISTIO_REPO),
    "istiod": Chart(ISTIO_VERSION, ISTIO_REPO),
    "gateway": Chart(ISTIO_VERSION, ISTIO_REPO),
    "cert-manager": Chart(CERT_MANAGER_VERSION, JETSTACK_REPO),
    "cert-manager-istio-csr": Chart(ISTIO_CSR_VERSION, JETSTACK_REPO),
    "prometheus": Chart(PROMETHEUS_CHART_VERSION, PROMETHEUS_REPO),
    "kiali-server": Chart(KIALI_CHART_VERSION, KIALI_REPO),
}
#: Chart name → the Helm repository it comes from when ``charts`` names no mirror for it.
UPSTREAM_CHART_REPOS: dict[str, str] = {name: chart.repo for name, chart in CHARTS.items()}

# --- Reading the matrix -----------------------------------------------------------------------


def minor(version: str) -> str:
    """The minor line of a version: ``v3.31.7`` → ``3.31``, ``1.30.5`` → ``1.30``."""
    return ".".join(version.removeprefix("v").split(".")[:2])


def _minor_key(line: str) -> tuple[int, ...]:
    return tuple(int(p) for p in line.split("."))


def within(line: str, low: str, high: str) -> bool:
    """Whether the minor ``line`` lies in ``low``-``high`` (both included), compared numerically."""
    return _minor_key(low) <= _minor_key(line) <= _minor_key(high)
