"""Preflight: what must hold before ``pulumi up`` is worth starting, on this machine and in AWS.

    python -m ops.preflight --stack staging            # the cloud checks (EKS stacks)
    python -m ops.preflight --tools --stack dev        # `make doctor`: every tool the stack needs
    python -m ops.preflight --billing --stack staging  # the account, region and what is billed

``--tools`` (``make doctor``, and the first step of ``make up``, ``preview``, ``destroy`` and
``e2e``) checks every prerequisite of the stack at once: each tool present and in its version range
(kubectl within one minor of the stack's Kubernetes, kind at the pinned release, the Pulumi CLI new
enough, the Docker engine running, AWS CLI v2 for EKS stacks) and, for kind, the host ports free.
Each missing or wrong one comes with its install lines for Debian/Ubuntu and macOS at the pinned
version. It needs only the standard library, so it runs before the virtualenv exists.

Without ``--tools``: credentials resolve (STS), the region exists, EKS offers the requested
Kubernetes version there, and a configured VPC and its subnets exist, belong together and span at
least two availability zones. Exit status 0 only when every check passes. Stacks that are not on
EKS have nothing to check there.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mesh_platform import versions
from offline import cli

try:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
except ImportError:  # --tools runs before the virtualenv exists; the AWS checks need it (and say so)

    class BotoCoreError(Exception):  # type: ignore[no-redef]
        """Stands in where botocore is not installed (nothing can raise it)."""

    ClientError = NoCredentialsError = BotoCoreError

if TYPE_CHECKING:
    import boto3

    from mesh_platform.settings import EksSettings, Settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def _error(err: Exception) -> str:
    if isinstance(err, ClientError):
        e = err.response.get("Error", {})
        return f"{e.get('Code')}: {e.get('Message')}"
    return str(err)


def credentials(session: boto3.session.Session, region: str) -> Check:
    try:
        who = session.client("sts", region_name=region).get_caller_identity()
        return Check("credentials", True, f"{who['Arn']} (account {who['Account']})")
    except (NoCredentialsError, ClientError, BotoCoreError) as err:
        return Check("credentials", False, f"no usable AWS credentials ({_error(err)}); set AWS_PROFILE or run `aws sso login`")


def region_exists(session: boto3.session.Session, region: str) -> Check:
    try:
        regions = session.client("ec2", region_name="us-east-1").describe_regions(AllRegions=True)["Regions"]
    except (ClientError, BotoCoreError) as err:
        return Check("region", False, f"cannot list regions ({_error(err)})")
    names = {r["RegionName"]: r.get("OptInStatus", "opt-in-not-required") for r in regions}
    if region not in names:
        return Check("region", False, f"{region} is not an AWS region")
    if names[region] == "not-opted-in":
        return Check("region", False, f"{region} exists but this account has not opted in to it")
    return Check("region", True, region)


def eks_version(session: boto3.session.Session, region: str, version: str) -> Check:
    try:
        offered = session.client("eks", region_name=region).describe_cluster_versions(clusterVersions=[version])[
            "clusterVersions"
        ]
    except (ClientError, BotoCoreError) as err:
        return Check("EKS version", False, f"cannot ask EKS for its versions in {region} ({_error(err)})")
    usable = [v for v in offered if v.get("clusterVersion") == version and v.get("status", "STANDARD_SUPPORT") != "UNSUPPORTED"]
    if not usable:
        return Check(
            "EKS version",
            False,
            f"EKS does not offer Kubernetes {version} in {region}; set cluster.kubernetesVersion to an offered one",
        )
    return Check("EKS version", True, f"{version} ({usable[0].get('status', 'offered')})")


def network(session: boto3.session.Session, region: str, eks: EksSettings) -> Check:
    if not eks.vpc_id:
        return Check("network", True, f"the stack creates its VPC ({eks.vpc_cidr}, {eks.availability_zones} AZs)")
    ec2 = session.client("ec2", region_name=region)
    try:
        ec2.describe_vpcs(VpcIds=[eks.vpc_id])
    except ClientError as err:
        return Check("network", False, f"VPC {eks.vpc_id} not found in {region} ({_error(err)})")
    ids = [*eks.private_subnet_ids, *eks.public_subnet_ids]
    try:
        subnets = ec2.describe_subnets(SubnetIds=ids)["Subnets"]
    except ClientError as err:
        return Check("network", False, f"subnets {', '.join(ids)}: {_error(err)}")
    elsewhere = sorted(s["SubnetId"] for s in subnets if s["VpcId"] != eks.vpc_id)
    if elsewhere:
        return Check("network", False, f"subnets {', '.join(elsewhere)} are not in VPC {eks.vpc_id}")
    zones = sorted({s["AvailabilityZone"] for s in subnets if s["SubnetId"] in eks.private_subnet_ids})
    if len(zones) < 2:
        return Check(
            "network",
            False,
            f"the private subnets span {len(zones)} availability zone(s) ({', '.join(zones)}); EKS needs at least two",
        )
    return Check("network", True, f"VPC {eks.vpc_id}, private subnets in {', '.join(zones)}")


def run(settings: Settings, session: boto3.session.Session) -> list[Check]:
    eks = settings.cluster.eks
    assert eks is not None
    checks = [credentials(session, eks.region)]
    if not checks[0].ok:
        return checks  # nothing else can be asked without credentials
    checks.append(region_exists(session, eks.region))
    if checks[-1].ok:
        checks.append(eks_version(session, eks.region, settings.cluster.kubernetes_version))
        checks.append(network(session, eks.region, eks))
    return checks


# --- the tools on this machine (``--tools``, `make doctor`): standard library only ---------------

#: Oldest Pulumi CLI: stack tags on the file and S3 backends (the lab expiry) arrived in 3.211.0
#: (pulumi/pulumi#19882); object-typed project config needs 3.186.
PULUMI_MIN = (3, 211)
#: Oldest Docker Engine (README "Prerequisites").
DOCKER_MIN = 24


def _pulumi_pin() -> str:
    """The CLI release of the pinned Python SDK (requirements.txt): CLI and SDK are released together."""
    found = re.search(r"^pulumi==(\S+)", (ROOT / "requirements.txt").read_text(), re.M)
    return found.group(1) if found else f"{PULUMI_MIN[0]}.{PULUMI_MIN[1]}.0"


def install_lines(tool: str, kubernetes: str) -> tuple[str, str]:
    """How to install ``tool`` at the pinned version: (Debian/Ubuntu, macOS)."""
    kind, pulumi = versions.KIND_VERSION, _pulumi_pin()
    kubectl = (
        'curl -LO "https://dl.k8s.io/release/$(curl -Ls https://dl.k8s.io/release/stable-{v}.txt)/bin/{os}/{arch}/kubectl"'
        " && sudo install -m 0755 kubectl /usr/local/bin/kubectl"
    )
    lines = {
        "docker": (
            "curl -fsSL https://get.docker.com | sudo sh && sudo usermod -aG docker $USER  (Docker Engine 24 or newer; log in again)",
            "brew install --cask docker, then start Docker Desktop (Engine 24 or newer)",
        ),
        "kind": (
            f"curl -Lo kind https://kind.sigs.k8s.io/dl/{kind}/kind-linux-$(dpkg --print-architecture)"
            " && sudo install -m 0755 kind /usr/local/bin/kind",
            f"curl -Lo kind https://kind.sigs.k8s.io/dl/{kind}/kind-darwin-$(uname -m | sed s/x86_64/amd64/)"
            " && sudo install -m 0755 kind /usr/local/bin/kind",
        ),
        "kubectl": (
            kubectl.format(v=kubernetes, os="linux", arch="$(dpkg --print-architecture)"),
            kubectl.format(v=kubernetes, os="darwin", arch="$(uname -m | sed s/x86_64/amd64/)"),
        ),
        "pulumi": (
            f"curl -fsSL https://get.pulumi.com | sh -s -- --version {pulumi}  (then add ~/.pulumi/bin to PATH)",
            f"curl -fsSL https://get.pulumi.com | sh -s -- --version {pulumi}  (then add ~/.pulumi/bin to PATH)",
        ),
        "aws": (
            'curl -Lo awscliv2.zip "https://awscli.amazonaws.com/awscli-exe-linux-$(uname -m).zip"'
            " && unzip -q awscliv2.zip && sudo ./aws/install --update",
            'curl -Lo AWSCLIV2.pkg "https://awscli.amazonaws.com/AWSCLIV2.pkg" && sudo installer -pkg AWSCLIV2.pkg -target /',
        ),
    }
    return lines[tool]


@dataclass(frozen=True)
class Tool:
    """One prerequisite's verdict: ``problem`` is empty when it holds."""

    name: str
    detail: str
    problem: str = ""
    missing: bool = False
    install: bool = True


def _run(*cmd: str) -> tuple[int, str]:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return 127, str(err)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _numbers(text: str, count: int) -> tuple[int, ...] | None:
    found = re.search(r"(\d+)" + r"\.(\d+)" * (count - 1), text)
    return tuple(int(x) for x in found.groups()) if found else None


def check_pulumi() -> Tool:
    _, out = _run("pulumi", "version")
    v = _numbers(out, 3)
    need = f"{PULUMI_MIN[0]}.{PULUMI_MIN[1]}.0 or newer"
    if v is None:
        return Tool("pulumi", need, f"cannot read its version from `pulumi version` ({out[:60]!r})")
    shown = ".".join(map(str, v))
    if v[:2] < PULUMI_MIN:
        return Tool("pulumi", need, f"Pulumi CLI {need} is needed, found {shown} (stack tags on the file and S3 backends)")
    return Tool("pulumi", f"{shown} ({need})")


def check_kubectl(kubernetes: str) -> Tool:
    major, minor = (int(x) for x in kubernetes.split("."))
    span = f"{major}.{minor - 1}-{major}.{minor + 1}"
    need = f"{span}: within one minor of the stack's Kubernetes {kubernetes} (kubernetes.io version-skew-policy, kubectl)"
    _, out = _run("kubectl", "version", "--client", "-o", "json")
    try:
        client = json.loads(out)["clientVersion"]
        v = (int(client["major"]), int(re.sub(r"\D.*", "", client["minor"])))
    except (ValueError, KeyError, TypeError):
        return Tool("kubectl", need, f"cannot read its version from `kubectl version --client -o json` ({out[:60]!r})")
    shown = f"{v[0]}.{v[1]}"
    if v[0] != major or abs(v[1] - minor) > 1:
        return Tool("kubectl", need, f"kubectl {shown} is outside {need}")
    return Tool("kubectl", f"{client.get('gitVersion', shown)} ({span})")


def check_kind() -> Tool:
    pin = versions.KIND_VERSION
    line = ".".join(pin.lstrip("v").split(".")[:2])
    need = f"v{line}.x: the node images are pinned for kind {pin}"
    _, out = _run("kind", "version")
    v = _numbers(out, 3)
    if v is None:
        return Tool("kind", need, f"cannot read its version from `kind version` ({out[:60]!r})")
    shown = "v" + ".".join(map(str, v))
    if ".".join(map(str, v[:2])) != line:
        return Tool("kind", need, f"kind {shown} is not {need}")
    return Tool("kind", f"{shown} ({need})")


def check_docker() -> Tool:
    need = f"Docker Engine {DOCKER_MIN} or newer, running"
    rc, out = _run("docker", "version", "--format", "{{.Server.Version}}")
    v = _numbers(out, 2) if rc == 0 else None
    if v is None:
        return Tool(
            "docker",
            need,
            f"docker is installed but its engine does not answer (is Docker running?): {out.splitlines()[-1][:100] if out else 'no answer'}",
            install=False,
        )
    if v[0] < DOCKER_MIN:
        return Tool("docker", need, f"Docker Engine {v[0]}.{v[1]} is older than {DOCKER_MIN}")
    return Tool("docker", f"engine {v[0]}.{v[1]} running ({need})")


def check_aws() -> Tool:
    need = "AWS CLI v2"
    _, out = _run("aws", "--version")
    found = re.search(r"aws-cli/(\d+)\.(\d+)\.(\d+)", out)
    if not found:
        return Tool("aws", need, f"cannot read its version from `aws --version` ({out[:60]!r})")
    if found.group(1) != "2":
        return Tool("aws", need, f"AWS CLI {found.group(1)}.{found.group(2)}.{found.group(3)} is not {need}")
    return Tool("aws", f"{found.group(1)}.{found.group(2)}.{found.group(3)} ({need})")


def check_port(port: int, key: str) -> Tool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as err:
            return Tool(
                f"port {port}",
                "free on 127.0.0.1",
                f"host port {port} ({key}) is taken ({err.strerror}): stop what holds it or set {key} in the stack file",
                install=False,
            )
    return Tool(f"port {port}", f"free on 127.0.0.1 ({key})")


def _cluster_config(path: Path) -> dict[str, Any]:
    """The stack file's ``mesh-platform:cluster`` object (PyYAML when there is one, else its plain keys)."""
    text = path.read_text()
    try:
        import yaml
    except ImportError:
        out: dict[str, Any] = {}
        block = re.search(r"^  mesh-platform:cluster:\n((?:    .*\n|\s*\n)*)", text, re.M)
        for line in (block.group(1) if block else "").splitlines():
            found = re.match(r"^( {4}| {6})([A-Za-z]+):\s*\"?([^\"#\s]*)", line)
            if found and found.group(3):
                target = out if len(found.group(1)) == 4 else out.setdefault("kind", {})
                value = found.group(3)
                target[found.group(2)] = int(value) if value.isdigit() and found.group(2) != "kubernetesVersion" else value
        return out
    doc = yaml.safe_load(text) or {}
    cluster = (doc.get("config") or {}).get("mesh-platform:cluster") if isinstance(doc, dict) else None
    return cluster if isinstance(cluster, dict) else {}


def needs(stack: str) -> tuple[str, list[str], str, list[tuple[int, str]]]:
    """The stack's provider, the tools it needs, its Kubernetes minor and (kind) its host ports."""
    path = ROOT / "stacks" / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in (ROOT / "stacks").glob("Pulumi.*.yaml"))
        raise cli.UsageError(f"no stack file {path.relative_to(ROOT)}; stacks here: {', '.join(known)}")
    cluster = _cluster_config(path)
    provider = str(cluster.get("provider", "kind"))
    kubernetes = str(cluster.get("kubernetesVersion", versions.KUBERNETES_VERSION))
    if provider == "eks":
        return provider, ["aws", "kubectl", "pulumi"], kubernetes, []
    if provider == "existing":
        return provider, ["pulumi"], kubernetes, []
    found = cluster.get("kind")
    kind: dict[str, Any] = found if isinstance(found, dict) else {}
    ports = [(int(kind.get("httpHostPort", 8080)), "cluster.kind.httpHostPort")]
    ports.append((int(kind.get("httpsHostPort", 8443)), "cluster.kind.httpsHostPort"))
    return provider, ["docker", "kind", "kubectl", "pulumi"], kubernetes, ports


def _kind_cluster_running(stack: str) -> bool:
    """The stack's own kind cluster is up: then the host ports are its own."""
    cluster = _cluster_config(ROOT / "stacks" / f"Pulumi.{stack}.yaml")
    name = str(cluster.get("name") or f"mesh-{stack}")
    rc, out = _run("kind", "get", "clusters")
    return rc == 0 and name in out.split()


def doctor(stack: str) -> tuple[list[Tool], str]:
    """Every prerequisite of ``stack`` at once; the verdicts and the stack's Kubernetes minor."""
    _, tools, kubernetes, ports = needs(stack)
    checks = {"pulumi": check_pulumi, "kind": check_kind, "docker": check_docker, "aws": check_aws}
    out = []
    for tool in tools:
        if shutil.which(tool) is None:
            out.append(Tool(tool, "", f"{tool} is not on PATH", missing=True))
        elif tool == "kubectl":
            out.append(check_kubectl(kubernetes))
        else:
            out.append(checks[tool]())
    if ports and not (shutil.which("kind") and _kind_cluster_running(stack)):
        out += [check_port(port, key) for port, key in ports]
    return out, kubernetes


def _doctor(stack: str) -> int:
    provider, _, _, _ = needs(stack)
    tools, kubernetes = doctor(stack)
    print(f"doctor: stack {stack} (cluster.provider {provider}) needs {', '.join(t.name for t in tools)}")
    for t in tools:
        if not t.problem:
            print(f"  ok    {t.name}: {t.detail}")
            continue
        print(f"  FAIL  {t.name}: {t.problem}")
        if t.install:
            debian, macos = install_lines(t.name, kubernetes)
            print(f"        Debian/Ubuntu: {debian}")
            print(f"        macOS:         {macos}")
    missing = [t.name for t in tools if t.missing]
    wrong = [t.name for t in tools if t.problem and not t.missing]
    if not missing and not wrong:
        return 0
    parts = ([f"missing for stack {stack}: {' '.join(missing)}"] if missing else []) + (
        [f"wrong for stack {stack}: {' '.join(wrong)}"] if wrong else []
    )
    print(
        "; ".join(parts) + ' (the FAIL lines above say why and how to install each; README.md, "Prerequisites")', file=sys.stderr
    )
    return 1


# --- what `make up` names before it asks, on a cloud stack (``--billing``) ---------------------


def billing(settings: Settings, session: boto3.session.Session) -> list[str]:
    """The account and region ``pulumi up`` would use, and what it bills there by the hour."""
    eks = settings.cluster.eks
    assert eks is not None
    who = credentials(session, eks.region)
    if not who.ok:
        raise cli.UsageError(who.detail)
    account = who.detail
    nat = 0 if eks.vpc_id else (eks.availability_zones if eks.nat_gateways == "OnePerAz" else 1)
    billed = [
        "the EKS control plane (1 cluster)",
        f"{eks.desired_nodes} x {eks.instance_type} nodes (the node group scales {eks.min_nodes}-{eks.max_nodes}) and their EBS volumes",
        *([f"{nat} NAT gateway(s) (eks.natGateways {eks.nat_gateways})"] if nat else []),
        "the ingress gateway's Network Load Balancer",
    ]
    return [
        f"stack {settings.stack}: AWS account {account}, region {eks.region}",
        f"billed by the hour while it runs: {'; '.join(billed)}",
    ]


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv)


def _main(argv: list[str] | None) -> int:
    parser = cli.parser(
        "python -m ops.preflight",
        __doc__,
        env=["AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"],
        exits=[
            (0, "every check passed, or the stack is not on EKS"),
            (1, "a check failed (its FAIL line says why, with the install lines for a tool)"),
        ],
    )
    parser.add_argument(
        "--stack", required=True, help="stack name: checks stacks/Pulumi.<stack>.yaml (its cluster.eks.region is used)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--tools", action="store_true", help="check the tools the stack needs on this machine (`make doctor`)")
    mode.add_argument("--billing", action="store_true", help="name the AWS account, region and what the stack bills")
    args = parser.parse_args(argv)
    if args.tools:
        return _doctor(args.stack)
    cli.needs_venv("ops.preflight", "boto3", "pulumi", "pydantic")
    import boto3

    from offline import engine

    settings = engine.settings(engine.stack_file(args.stack), args.stack)  # invalid: pulumi.RunError, exit 2
    if settings.cluster.provider != "eks":
        print(f"{args.stack}: provider {settings.cluster.provider}; no cloud preflight needed")
        return 0
    if args.billing:
        for line in billing(settings, boto3.session.Session()):
            print(line)
        return 0
    checks = run(settings, boto3.session.Session())
    for c in checks:
        print(c)
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
