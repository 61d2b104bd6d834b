"""The local control plane: a real API server and controllers, no containers.

    python -m tests.itest.local.controlplane up   [--dir out/local]   # start in the background, write <dir>/env
    python -m tests.itest.local.controlplane down [--dir out/local]   # stop exactly what `up` started, by PID

Runs, all on 127.0.0.1 and built by tests/itest/local/build.py: etcd, kube-apiserver,
kube-controller-manager (Deployments, ReplicaSets, namespaces, garbage collection) and
kube-scheduler (the real ones), kwok (one node; it marks scheduled pods Running and Ready without
running a container), a Helm repository of the STAND-IN charts (tests/itest/local/charts.py), and the
stand-in operators (tests/itest/local/operators.py). ``<dir>/env`` is a shell file to source: PATH with
the built ``pulumi``, KUBECONFIG, PULUMI_BACKEND_URL (a file backend under ``<dir>``),
PULUMI_CONFIG_PASSPHRASE and MESH_CHART_MIRROR.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests
import yaml

from . import build, certmanager_plugin, charts, pki
from .operators import Operators

ROOT = Path(__file__).resolve().parents[3]
HOST = "127.0.0.1"
NODE = "kwok-node-0"
#: The chart mirror and API server of `make local-up`, as stacks/Pulumi.local.yaml and
#: tests/itest/local/kubeconfig.yaml name them.
LOCAL_CHARTS_PORT = 8879
LOCAL_API_PORT = 16443
#: Every write, with microsecond timestamps: the order in which things really happened.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "verbs": ["create", "update", "patch", "delete"]}, {"level": "None"}],
}
PASSPHRASE = "mesh-platform-local"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_until(what: str, check, timeout: float, interval: float = 0.2, proc: subprocess.Popen | None = None):
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {proc.returncode}")
        try:
            got = check()
            if got:
                return got
        except Exception as err:
            last = err
        threading.Event().wait(interval)
    raise TimeoutError(f"{what} not reached within {timeout:.0f} s{f' (last error: {last})' if last else ''}")


class Kube:
    """The few API calls the harness needs, with the admin client certificate."""

    def __init__(self, server: str, pki_dir: Path) -> None:
        self.server = server
        self.s = requests.Session()
        self.s.cert = (str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))
        self.s.verify = str(pki_dir / "ca.crt")
        # REQUESTS_CA_BUNDLE and the like would otherwise replace the local CA.
        self.s.trust_env = False

    def get(self, path: str, **kw) -> dict:
        r = self.s.get(self.server + path, timeout=10, **kw)
        r.raise_for_status()
        return r.json()

    def send(self, method: str, path: str, body: dict | None = None, content_type: str = "application/json",
             headers: dict[str, str] | None = None) -> dict:  # fmt: skip
        """``headers``: a User-Agent names the field manager of a non-apply write, as for any client."""
        r = self.s.request(method, self.server + path, data=json.dumps(body) if body is not None else None,
                           headers={"Content-Type": content_type, **(headers or {})}, timeout=10)  # fmt: skip
        r.raise_for_status()
        return r.json()

    def ready(self) -> bool:
        return self.s.get(self.server + "/readyz", timeout=5).status_code == 200


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class ControlPlane:
    """Start with ``start()``, stop with ``stop()``; every process is a child, stopped by its PID."""

    def __init__(self, directory: Path, cache: Path | None = None, log=print, charts_port: int = 0, api_port: int = 0,
                 crds: Path | None = None) -> None:  # fmt: skip
        self.dir = directory.resolve()
        #: The real CRDs the stand-in charts install (charts.crd_dir(): $MESH_UPSTREAM_CRDS or shared/).
        self.crd_dir = crds or charts.crd_dir()
        self.crds: list[charts.CrdSet] = []
        self.charts_port = charts_port
        self.api_port = api_port
        self.cache = cache or build.cache_root()
        self.log = log
        self.procs: dict[str, subprocess.Popen] = {}
        self.timings: dict[str, float] = {}
        self.bins: dict[str, Path] = {}
        self.charts_server: http.server.ThreadingHTTPServer | None = None
        self.operators: Operators | None = None

    # --- paths -------------------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.dir / "logs" / "audit.log"

    def audit(self) -> list[dict]:
        """The API server's audit events so far (creates, updates, patches, deletes)."""
        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip()]

    @property
    def bin_dir(self) -> Path:
        return self.dir / "bin"

    def tools(self) -> None:
        started = time.monotonic()
        for name, tool in build.TOOLS.items():
            self.bins[name] = build.build(tool, self.cache, log=self.log)
        self.timings["tools"] = round(time.monotonic() - started, 1)

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = (self.dir / "logs" / f"{name}.log").open("w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs[name] = proc
        self._write_pids()
        return proc

    def _write_pids(self) -> None:
        (self.dir / "pids").write_text("".join(f"{n} {p.pid}\n" for n, p in self.procs.items()))

    # --- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        # Before the long build: without the real CRDs there is nothing to run (charts.CrdsMissingError).
        self.crds = charts.crd_sets(self.crd_dir)
        for c in self.crds:
            note = " (nearest older: no CRDs at the pin)" if c.substituted else ""
            self.log(f"CRDs for {c.chart} {c.pin}: {c.used} in {self.crd_dir}{note}")
        self.tools()
        started = time.monotonic()
        for sub in ("logs", "etcd", "pki", "state", "charts"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        pki.write_control_plane_pki(self.dir / "pki")
        (self.dir / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
        p = self.dir / "pki"
        etcd_port, peer_port, api_port = free_port(), free_port(), self.api_port or free_port()
        self.server = f"https://{HOST}:{api_port}"
        etcd = self._spawn(
            "etcd",
            [str(self.bins["etcd"] / "etcd"), "--data-dir", str(self.dir / "etcd"), "--name", "local",
             "--listen-client-urls", f"http://{HOST}:{etcd_port}", "--advertise-client-urls", f"http://{HOST}:{etcd_port}",
             "--listen-peer-urls", f"http://{HOST}:{peer_port}", "--initial-advertise-peer-urls", f"http://{HOST}:{peer_port}",
             "--initial-cluster", f"local=http://{HOST}:{peer_port}", "--unsafe-no-fsync", "--log-level", "warn"],
        )  # fmt: skip
        wait_until("etcd health", lambda: requests.get(f"http://{HOST}:{etcd_port}/health", timeout=2).ok, 60, proc=etcd)
        k8s = self.bins["kubernetes"]
        self.api_argv = [str(k8s / "kube-apiserver"), f"--etcd-servers=http://{HOST}:{etcd_port}", f"--bind-address={HOST}",
             f"--advertise-address={HOST}", f"--secure-port={api_port}", f"--tls-cert-file={p / 'apiserver.crt'}",
             f"--tls-private-key-file={p / 'apiserver.key'}", f"--client-ca-file={p / 'ca.crt'}",
             "--service-account-issuer=https://kubernetes.default.svc", f"--service-account-key-file={p / 'sa.pub'}",
             f"--service-account-signing-key-file={p / 'sa.key'}", "--service-cluster-ip-range=10.96.0.0/16",
             "--authorization-mode=Node,RBAC", f"--cert-dir={self.dir / 'pki'}", "--enable-priority-and-fairness=false",
             f"--audit-policy-file={self.dir / 'audit-policy.yaml'}", f"--audit-log-path={self.audit_log}"]  # fmt: skip
        api = self._spawn("kube-apiserver", self.api_argv)
        self.write_kubeconfig()
        self.kube = Kube(self.server, p)
        wait_until("kube-apiserver /readyz", self.kube.ready, 120, proc=api)
        common = [f"--kubeconfig={self.kubeconfig}", "--leader-elect=false", f"--bind-address={HOST}", "--secure-port=0"]
        self._spawn(
            "kube-controller-manager",
            [str(k8s / "kube-controller-manager"), *common, f"--service-account-private-key-file={p / 'sa.key'}",
             f"--root-ca-file={p / 'ca.crt'}", "--use-service-account-credentials=true", "--controllers=*,-node-ipam-controller"],
        )  # fmt: skip
        self._spawn("kube-scheduler", [str(k8s / "kube-scheduler"), *common])
        self._spawn(
            "kwok",
            [str(self.bins["kwok"] / "kwok"), f"--kubeconfig={self.kubeconfig}", "--manage-all-nodes=true",
             f"--config={self.bins['kwok'] / 'kwok-stages.yaml'}", f"--node-ip={HOST}", "--server-address=",
             # kwok renews the node's Lease: the node lifecycle controller sees a live node and leaves its pods Ready.
             "--node-lease-duration-seconds=40"],
        )  # fmt: skip
        self._node()
        charts.package(self.dir / "charts", self.bins["helm"] / "helm", self.crds)
        handler = functools.partial(_Quiet, directory=str(self.dir / "charts"))
        self.charts_server = http.server.ThreadingHTTPServer((HOST, self.charts_port), handler)
        threading.Thread(target=self.charts_server.serve_forever, daemon=True).start()
        self.mirror = f"http://{HOST}:{self.charts_server.server_address[1]}"
        self._cli()
        self.operators = Operators(self.kube, log=self.log)
        self.operators.start()
        self.write_env()
        wait_until("the namespace 'default' and its service account", self._default_sa, 60)
        self.timings["control_plane"] = round(time.monotonic() - started, 1)

    def _node(self) -> None:
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": NODE, "annotations": {"kwok.x-k8s.io/node": "fake"}, "labels": {"type": "kwok"}},
            "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "500"},
                       "capacity": {"cpu": "64", "memory": "256Gi", "pods": "500"}},
        }  # fmt: skip
        try:
            self.kube.send("POST", "/api/v1/nodes", node)
        except requests.HTTPError as err:
            if err.response is None or err.response.status_code != 409:  # kept from an earlier start: fine
                raise
        wait_until(
            f"node {NODE} Ready",
            lambda: any(c["type"] == "Ready" and c["status"] == "True"
                        for c in self.kube.get(f"/api/v1/nodes/{NODE}").get("status", {}).get("conditions", [])),
            60,
        )  # fmt: skip

    def _default_sa(self) -> bool:
        return bool(self.kube.get("/api/v1/namespaces/default/serviceaccounts").get("items"))

    def _cli(self) -> None:
        """bin/: the built pulumi, the language host, the kubernetes plugin installed for the SDK's
        version, and the STAND-IN kubernetes-cert-manager plugin (tests/itest/local/certmanager_plugin.py)."""
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        for target in (self.bins["pulumi"] / "pulumi",):
            link = self.bin_dir / target.name
            link.unlink(missing_ok=True)
            link.symlink_to(target)
        host = self.bin_dir / "pulumi-language-python"
        host.write_text(
            "#!/bin/sh\n# The Python language host (tests/itest/local/langhost.py) around the SDK's program runner.\n"
            f"export PULUMI_LANGUAGE_PYTHON_EXEC={shlex.quote(str(self.bins['language-python'] / 'pulumi-language-python-exec'))}\n"
            f'PYTHONPATH={shlex.quote(str(ROOT))} exec {shlex.quote(str(ROOT / ".venv/bin/python"))} -m tests.itest.local.langhost "$@"\n'
        )
        host.chmod(0o755)
        # The plugin version the Python SDK asks for, from the binary built here: never a download.
        provider = self.bins["provider-kubernetes"] / "pulumi-resource-kubernetes"
        done = subprocess.run(
            [str(self.bin_dir / "pulumi"), "plugin", "install", "resource", "kubernetes", build.PROVIDER_AS, "--file", str(provider)],
            env={**os.environ, **self.env()}, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"pulumi plugin install resource kubernetes {build.PROVIDER_AS} failed: {done.stderr.strip()}")
        # cert-manager's package is a remote component: the STAND-IN plugin of its name and version.
        certmanager_plugin.install(self.bin_dir / "pulumi", self.dir / "plugins", self.env())

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bin_dir}:{os.environ.get('PATH', '')}",
            "KUBECONFIG": str(self.kubeconfig),
            "PULUMI_BACKEND_URL": f"file://{self.dir / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_HOME": str(self.dir / "pulumi-home"),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            # The stack file stays as committed: the secrets manager is read from the state.
            "PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER": "true",
            "MESH_CHART_MIRROR": self.mirror,
        }

    def write_env(self) -> None:
        lines = ["# Source me: the local control plane started by `make local-up` (`make local-down` stops it)."]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in self.env().items() if k != "PATH"]
        lines.append(f'export PATH={shlex.quote(str(self.bin_dir))}:"$PATH"')
        (self.dir / "env").write_text("\n".join(lines) + "\n")

    def write_kubeconfig(self) -> None:
        p = self.dir / "pki"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": {"server": self.server, "certificate-authority": str(p / "ca.crt")}}],
            "users": [
                {"name": "admin", "user": {"client-certificate": str(p / "admin.crt"), "client-key": str(p / "admin.key")}}
            ],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "admin"}}],
            "current-context": "local",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.kubeconfig.chmod(0o600)

    # --- stop ------------------------------------------------------------------------------------
    def stop_process(self, name: str, timeout: float = 20) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def restart_apiserver(self) -> None:
        self.stop_process("kube-apiserver")
        api = self._spawn("kube-apiserver", self.api_argv)
        wait_until("kube-apiserver /readyz", self.kube.ready, 120, proc=api)

    def stop(self) -> None:
        if self.operators:
            self.operators.stop()
        if self.charts_server:
            self.charts_server.shutdown()
        for name in reversed(list(self.procs)):
            self.stop_process(name)


# --- `make local-up` / `make local-down` -------------------------------------------------------


def _serve(directory: Path) -> int:
    cp = ControlPlane(directory, charts_port=LOCAL_CHARTS_PORT, api_port=LOCAL_API_PORT)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        cp.start()
        (directory / "ready").write_text(json.dumps(cp.timings))
        stop.wait()
    finally:
        cp.stop()
    return 0


def up(directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    pid_file = directory / "supervisor.pid"
    if pid_file.exists() and _alive(int(pid_file.read_text())):
        print(f"the local control plane is already running (PID {pid_file.read_text().strip()}); source {directory / 'env'}")
        return 0
    (directory / "ready").unlink(missing_ok=True)
    (directory / "logs").mkdir(exist_ok=True)
    log = (directory / "logs" / "supervisor.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.itest.local.controlplane", "serve", "--dir", str(directory)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    pid_file.write_text(f"{proc.pid}\n")
    try:
        # A cold build of every tool takes about 20 minutes on 2 cores; a warm start, seconds.
        wait_until("the local control plane", lambda: (directory / "ready").exists(), 3 * 3600, interval=1, proc=proc)
    except (RuntimeError, TimeoutError) as err:
        print(f"local control plane did not start: {err}; see {directory / 'logs'}", file=sys.stderr)
        _stop_pid(proc.pid)
        return 1
    _local_stack(directory)
    print(f"local control plane up ({json.loads((directory / 'ready').read_text())}); now: source {directory / 'env'}")
    return 0


#: What `pulumi stack init` writes into a stack file; the state keeps it too (see the Makefile).
_SECRETS_LINE = ("encryptionsalt:", "encryptedkey:", "secretsprovider:")


def _local_stack(directory: Path) -> None:
    """Stack ``local`` in the local backend, its tracked stack file left as committed."""
    env = {**os.environ, **{k: v for k, v in _env_file(directory).items()}}
    listed = subprocess.run(["pulumi", "stack", "ls", "--json"], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if listed.returncode == 0 and any(s["name"] == "local" for s in json.loads(listed.stdout or "[]")):
        return
    stack_file = ROOT / "stacks" / "Pulumi.local.yaml"
    committed = stack_file.read_text()
    try:
        subprocess.run(
            ["pulumi", "--non-interactive", "stack", "init", "local", "--secrets-provider", "passphrase"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        if stack_file.read_text() != committed:
            kept = [line for line in stack_file.read_text().splitlines(keepends=True) if not line.startswith(_SECRETS_LINE)]
            stack_file.write_text("".join(kept))


def _env_file(directory: Path) -> dict[str, str]:
    """The variables of ``<dir>/env``, PATH expanded."""
    out = {}
    for line in (directory / "env").read_text().splitlines():
        if line.startswith("export "):
            k, _, v = line.removeprefix("export ").partition("=")
            out[k] = os.path.expandvars(shlex.split(v)[0]) if v else ""
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop_pid(pid: int, timeout: float = 30) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        threading.Event().wait(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def down(directory: Path) -> int:
    pid_file = directory / "supervisor.pid"
    if not pid_file.exists():
        print(f"no local control plane recorded in {directory}; nothing stopped")
        return 0
    _stop_pid(int(pid_file.read_text()))
    # Whatever the supervisor could not stop (it was killed), by the PIDs it recorded.
    pids = directory / "pids"
    if pids.exists():
        for line in pids.read_text().splitlines():
            name, pid = line.split()
            if _alive(int(pid)):
                print(f"stopping {name} (PID {pid})")
                _stop_pid(int(pid))
        pids.unlink()
    pid_file.unlink()
    (directory / "ready").unlink(missing_ok=True)
    print("local control plane stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.itest.local.controlplane", description="the local control plane")
    ap.add_argument("command", choices=("up", "down", "serve"))
    ap.add_argument("--dir", type=Path, default=ROOT / "out" / "local")
    args = ap.parse_args(argv)
    directory = args.dir.resolve()
    if args.command == "serve":
        return _serve(directory)
    return up(directory) if args.command == "up" else down(directory)


if __name__ == "__main__":
    sys.exit(main())
