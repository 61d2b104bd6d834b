"""Build the local control plane's programs from their Go modules, once, into a cache outside git.

    python -m tests.itest.local.build [--cache DIR] [TOOL ...]     # prints one line per tool, then the bin dirs

Each tool lands in ``<cache>/<name>-<version>-r<recipe>/bin`` and is reused while that directory has
``.done``; ``build-seconds`` says how long its cold build took. A cold build downloads the module
(``go mod download``, through the Go module proxy), copies it into ``<cache>/work``, pins the
sibling modules its go.mod replaces with relative paths to their published versions (the
Kubernetes staging modules to ``k8s.io/* v0.<minor>.<patch>``, Pulumi's ``sdk`` to the same
version as ``pkg``, etcd's own modules to the etcd version), runs ``go generate`` where the
module needs it, and ``go build``s. ``.done`` is written last, so a build that stops half way is
started again next time, never reused.

A build depends on nothing of the caller's Go setup but where modules and build results are cached
(``GOMODCACHE``, ``GOCACHE``) and how modules are fetched (``GOPROXY``, ``GOSUMDB``, ``GOPRIVATE``,
...): ``go_env()`` drops every other ``GO*`` variable (``GOFLAGS``, ``GOWORK``, ``GOPATH``,
``GOBIN``, ...), turns the go env file and workspaces off (a ``go.work`` above the cache, or the
one ``k8s.io/kubernetes`` ships, would put ``go`` in workspace mode, where ``-mod=mod`` is refused)
and uses the local toolchain.

A tool whose exact pinned version is already on PATH (``pulumi``, ``helm``) is used as it is.

What is built, and why at these versions:

- Pulumi CLI ``github.com/pulumi/pulumi/pkg/v3`` v3.276.0, the newest version the Go module proxy
  serves (listed 2026-12-04: v3.274.0, v3.274.1, v3.275.0, v3.276.0; ``pkg/v3@v3.272.0``, the SDK
  pin of requirements.txt then, is refused). The CLI speaks the same engine protocol to that SDK.
- ``pulumi-resource-kubernetes`` from ``github.com/pulumi/pulumi-kubernetes/provider/v4``: the proxy
  refuses v4.34.2 (the SDK pin) and serves only the pseudo-version below, whose commit
  (f47bc2d6f199) is the one tagged ``v4.25.0`` in pulumi/pulumi-kubernetes: this is the v4.25.0
  provider (``PROVIDER_CODE``). It is installed as plugin version 4.34.2, the version the Python SDK
  asks for, so the CLI downloads nothing; every report names both. Its go.mod replaces
  ``sdk/v4`` with ``../sdk`` (v4.25.0 there, not served); it is pinned to v4.22.2, the newest
  served ``sdk/v4`` that requires no newer Pulumi SDK than the provider's own v3.215.0, so the
  build's other requirements stay as the provider's go.mod has them (v4.29.0 moves
  ``pulumi/sdk/v3`` past what the provider's code generator compiles against).
- The Python language host: the proxy refuses
  ``github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3``. Its program runner,
  ``pulumi-language-python-exec``, ships in the ``sdk/v3`` module at the SDK pin of requirements.txt
  (``PULUMI_SDK``, read from there) and is copied from there; tests/itest/local/langhost.py serves the gRPC LanguageRuntime around it.
- kube-apiserver and kube-controller-manager at the stacks' Kubernetes minor (``k8s.io/kubernetes``).
- etcd 3.6.17 (``go.etcd.io/etcd/server/v3``): Debian's etcd-server is 3.4.23, older than the
  3.4.31 whose watch-progress fixes kube-apiserver 1.36 needs.
- kwok (``sigs.k8s.io/kwok``) with its "fast" node and pod stages, and helm (``helm.sh/helm/v3``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Bump when a recipe below changes what it produces: the directory name changes with it.
RECIPE = 2
#: Where the Python packages are pinned; the SDK and Kubernetes provider versions below are read from it.
REQUIREMENTS = Path(__file__).resolve().parents[3] / "requirements.txt"


def pinned(name: str, requirements: Path = REQUIREMENTS) -> str:
    """The version ``requirements`` pins ``name`` to (a ``name==version`` line); read here, never typed."""
    for line in requirements.read_text().splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if m and m[1].lower().replace("_", "-") == name:
            return m[2]
    raise LookupError(f"{requirements} pins no {name}==<version>")


def cache_root() -> Path:
    """``$MESH_LOCAL_CACHE``, else ``$XDG_CACHE_HOME/mesh-platform/local``, else ``~/.cache/...``."""
    if os.environ.get("MESH_LOCAL_CACHE"):
        return Path(os.environ["MESH_LOCAL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mesh-platform" / "local"


@dataclass(frozen=True)
class Tool:
    name: str
    version: str
    module: str
    #: (package directory inside the module, binary name)
    binaries: tuple[tuple[str, str], ...] = ()
    #: module → version, for every replace with a relative path in the module's go.mod
    #: (``prefix/*`` covers every module under the prefix).
    pins: dict[str, str] = field(default_factory=dict)
    #: package directories whose ``go generate`` must run first, with the environment it needs.
    generate: tuple[tuple[str, dict[str, str]], ...] = ()
    ldflags: str = ""
    #: files copied from the module as they are: (path in the module, name in bin/)
    files: tuple[tuple[str, str], ...] = ()
    #: the command that prints an installed binary's version: one of exactly this version on PATH is used.
    version_argv: tuple[str, ...] = ()

    @property
    def module_version(self) -> str:
        return self.version if self.version.startswith("v") else f"v{self.version}"

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version.removeprefix('v') if self.name != 'provider-kubernetes' else self.version}-r{RECIPE}"


K8S = "1.36.3"
PULUMI = "3.276.0"
#: The Python SDK pin of requirements.txt: the language host's program runner comes from that SDK module.
PULUMI_SDK = pinned("pulumi")
PROVIDER = "v4.0.0-20260115033456-f47bc2d6f199"
#: What that pseudo-version's commit is: ``git describe`` in pulumi/pulumi-kubernetes gives v4.25.0.
PROVIDER_CODE = "4.25.0"
#: The newest served ``sdk/v4`` not newer than the provider's own requirement (v4.24.0).
PROVIDER_SDK = "v4.22.2"
#: The pulumi-kubernetes version requirements.txt pins: the plugin version the SDK asks for.
PROVIDER_AS = pinned("pulumi-kubernetes")
ETCD = "3.6.17"
#: The newest helm v3 the Go module proxy serves (2026-12-04), past the security fix of 3.20.2.
HELM = "3.22.0"

TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        Tool(
            "etcd",
            ETCD,
            "go.etcd.io/etcd/server/v3",
            binaries=((".", "etcd"),),
            pins={f"go.etcd.io/etcd/{m}/v3": f"v{ETCD}" for m in ("api", "client/pkg", "client", "pkg")},
        ),
        Tool(
            "kubernetes",
            K8S,
            "k8s.io/kubernetes",
            binaries=(
                ("cmd/kube-apiserver", "kube-apiserver"),
                ("cmd/kube-controller-manager", "kube-controller-manager"),
                # kwok plays the kubelets, not the scheduler: pods are bound by the real one.
                ("cmd/kube-scheduler", "kube-scheduler"),
            ),
            # Every staging module (k8s.io/api, k8s.io/client-go, ...) is published as v0.<minor>.<patch>.
            pins={"k8s.io/*": "v0." + K8S.split(".", 1)[1]},
        ),
        Tool(
            "kwok",
            "0.8.0",
            "sigs.k8s.io/kwok",
            binaries=(("cmd/kwok", "kwok"),),
            files=(
                ("kustomize/stage/node/fast/node-initialize.yaml", "kwok-stages.yaml"),
                ("kustomize/stage/pod/fast/pod-ready.yaml", "kwok-stages.yaml"),
                ("kustomize/stage/pod/fast/pod-complete.yaml", "kwok-stages.yaml"),
                ("kustomize/stage/pod/fast/pod-delete.yaml", "kwok-stages.yaml"),
            ),
        ),
        Tool("helm", HELM, "helm.sh/helm/v3", binaries=(("cmd/helm", "helm"),), version_argv=("helm", "version", "--short")),
        Tool(
            "pulumi",
            PULUMI,
            "github.com/pulumi/pulumi/pkg/v3",
            binaries=(("cmd/pulumi", "pulumi"),),
            pins={"github.com/pulumi/pulumi/sdk/v3": f"v{PULUMI}"},
            version_argv=("pulumi", "version"),
            ldflags=f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v{PULUMI}",
        ),
        Tool(
            "provider-kubernetes",
            PROVIDER,
            "github.com/pulumi/pulumi-kubernetes/provider/v4",
            binaries=(("cmd/pulumi-resource-kubernetes", "pulumi-resource-kubernetes"),),
            pins={"github.com/pulumi/pulumi-kubernetes/sdk/v4": PROVIDER_SDK},
            generate=(("cmd/pulumi-resource-kubernetes", {"VERSION": PROVIDER_AS}),),
            ldflags=f"-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version={PROVIDER_AS}",
        ),
        Tool(
            "language-python",
            PULUMI_SDK,
            "github.com/pulumi/pulumi/sdk/v3",
            files=(("python/cmd/pulumi-language-python-exec", "pulumi-language-python-exec"),),
        ),
    )
}


#: Minutes a cold build of each tool took on a 2-core machine with nothing cached (README.md, "Local
#: control plane": 37, 255, 61, 56, 164 and 482 s), told before it starts.
COLD_MINUTES = {"etcd": 1, "kubernetes": 5, "kwok": 1, "helm": 1, "pulumi": 3, "provider-kubernetes": 8}


class BuildError(Exception):
    pass


def pin_of(tool: Tool, module: str) -> str | None:
    if module in tool.pins:
        return tool.pins[module]
    return next((v for k, v in tool.pins.items() if k.endswith("/*") and module.startswith(k[:-1])), None)


#: The caller's ``GO*`` variables a build keeps: caches and module fetching, nothing that changes
#: what is built.
GO_ENV_KEPT = ("GOMODCACHE", "GOCACHE", "GOTMPDIR", "GOPROXY", "GONOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE",
               "GOINSECURE", "GOAUTH", "GOVCS", "GOMAXPROCS")  # fmt: skip
GO_ENV_SET = {
    "GOTOOLCHAIN": "local",
    "GOWORK": "off",
    "GOENV": "off",
    "GOFLAGS": "-mod=mod",
    "GO111MODULE": "on",
    "CGO_ENABLED": "0",
}


def go_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every ``go`` command of a build runs with (see the module docstring)."""
    environ = dict(os.environ if environ is None else environ)
    kept = {k: v for k, v in environ.items() if not k.startswith("GO") or k in GO_ENV_KEPT}
    return {**kept, **GO_ENV_SET}


def _go(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(["go", *args], cwd=cwd, env={**go_env(), **(env or {})}, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"go {' '.join(args)} (in {cwd}) failed:\n{done.stderr.strip()[-3000:]}")
    return done.stdout


def relative_replaces(go_mod: str) -> list[str]:
    """The modules a go.mod replaces with a relative path (``=> ./x`` or ``=> ../x``)."""
    out = []
    for line in go_mod.splitlines():
        m = re.match(r"^\s*(?:replace\s+)?(\S+)(?:\s+v\S+)?\s+=>\s+(\.\.?/\S*)\s*$", line)
        if m and "FORBIDDEN" not in m.group(2):
            out.append(m.group(1))
    return out


def on_path(tool: Tool) -> Path | None:
    """The directory of ``tool``'s binary on PATH when it is exactly the pinned version, else None."""
    if not tool.version_argv:
        return None
    exe = shutil.which(tool.version_argv[0])
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, *tool.version_argv[1:]], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\bv?(\d+\.\d+\.\d+)(?![.\d])", done.stdout)
    return Path(exe).parent if found and found.group(1) == tool.version.removeprefix("v") else None


def found(tool: Tool, root: Path) -> Path | None:
    """The directory of ``tool``'s binaries if there is one already: built before, or the pinned one on PATH."""
    target = root / tool.key
    return target / "bin" if (target / ".done").exists() else on_path(tool)


def announce(tool: Tool, root: Path, where: Path | None) -> str:
    """The line said before a tool is used: built before, on PATH (``where``), or how long its cold build takes."""
    head = f"{tool.name} {tool.version}"
    if where == root / tool.key / "bin":
        return f"{head}: built before, in {root / tool.key}"
    if where is not None:
        return f"{head}: the pinned version is on PATH ({where}), used as it is"
    minutes = COLD_MINUTES.get(tool.name)
    about = f"about {minutes} min" if minutes else "under a minute"
    return f"{head}: building from {tool.module} (cold: {about} on 2 cores)"


def build(tool: Tool, root: Path, log=print) -> Path:
    """The directory holding ``tool``'s binaries: built before, the pinned one on PATH, or built now."""
    target = root / tool.key
    where = found(tool, root)
    log(announce(tool, root, where))
    if where is not None:
        return where
    # A brand-new machine has no cache directory yet; every go command below runs in it.
    root.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    src = Path(json.loads(_go(["mod", "download", "-json", f"{tool.module}@{tool.module_version}"], cwd=root))["Dir"])
    work = root / "work" / f"{tool.name}-{tool.version}"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(src, work, symlinks=True)
    for p in [work, *work.rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | 0o200)
    shutil.rmtree(work / "vendor", ignore_errors=True)
    if tool.binaries:
        go_mod = (work / "go.mod").read_text()
        unpinned = sorted(m for m in relative_replaces(go_mod) if pin_of(tool, m) is None)
        if unpinned:
            raise BuildError(f"{tool.module} replaces {unpinned} with local paths and no version is pinned for them")
        edits = ["-toolchain=none"]
        for module in relative_replaces(go_mod):
            edits += [f"-dropreplace={module}", f"-require={module}@{pin_of(tool, module)}"]
        _go(["mod", "edit", *edits], cwd=work)
        for package, env in tool.generate:
            _go(["generate", "."], cwd=work / package, env=env)
    staging = root / f"{tool.key}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "bin").mkdir(parents=True)
    # -s -w: no symbol table or DWARF, a shorter link of the same program.
    flags = ["-trimpath", "-ldflags", " ".join(["-s -w", tool.ldflags]).strip()]
    # Binaries named after their package are built by one `go build`, which links them side by side.
    together = [f"./{pkg}" for pkg, binary in tool.binaries if Path(pkg).name == binary]
    if together:
        _go(["build", *flags, "-o", str(staging / "bin") + "/", *together], cwd=work)
    for package, binary in tool.binaries:
        if Path(package).name != binary:
            _go(["build", *flags, "-o", str(staging / "bin" / binary), f"./{package}"], cwd=work)
    for path, name in tool.files:
        with (staging / "bin" / name).open("a") as out:
            text = (work / path).read_text()
            out.write(text if text.startswith("---") or name.endswith("-exec") else "---\n" + text)
        if name.endswith("-exec"):
            (staging / "bin" / name).chmod(0o755)
    seconds = round(time.monotonic() - started)
    (staging / "build-seconds").write_text(f"{seconds}\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    (target / ".done").write_text("")
    shutil.rmtree(work, ignore_errors=True)
    log(f"{tool.name} {tool.version}: built in {seconds} s")
    return target / "bin"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.itest.local.build", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=None, help="cache root (default: $MESH_LOCAL_CACHE or ~/.cache/...)")
    ap.add_argument("tools", nargs="*", help=f"which ({', '.join(TOOLS)}); all when none")
    args = ap.parse_args(argv)
    unknown = [t for t in args.tools if t not in TOOLS]
    if unknown:
        print(f"unknown tool {unknown[0]!r}; known: {', '.join(TOOLS)}", file=sys.stderr)
        return 2
    if shutil.which("go") is None:
        print("go is not on PATH: the local control plane is built from Go modules (README.md, 'Prerequisites')",
              file=sys.stderr)  # fmt: skip
        return 2
    root = args.cache or cache_root()
    for name in args.tools or list(TOOLS):
        try:
            build(TOOLS[name], root, log=lambda line: print(line, flush=True))
        except (BuildError, OSError) as err:
            print(f"cannot build {name}: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
