"""How render and verify scale with the number of services (``make bench``).

    python -m offline.verify.bench [--sizes 10 50 100 300]

Generates stacks of N services (``stack_config``): each allowed from its neighbour and from the
in-mesh client, every tenth exposed through the gateway with a canary (v1 90 %, v2 10 %). Each
measurement runs in a fresh interpreter, so caches and imports of one never help another; the
baseline is ``import pulumi, pulumi_kubernetes`` timed in a fresh interpreter of the same run, and
every time is also printed as a ratio to it. Peak MiB is the process's maximum resident set size;
the CPU seconds tell how much of a wall time was waiting for a busy machine.
A benchmark, not a test: it prints figures and fails only if a run fails.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from offline import cli, engine

SIZES = (10, 50, 100, 300)
_IMPORT = "import time; t = time.perf_counter(); import pulumi, pulumi_kubernetes; print(time.perf_counter() - t)"


def services(n: int) -> list[dict[str, Any]]:
    """N services ``svc-000`` ...: each callable by its predecessor and the client; every tenth exposed, with a canary."""
    out = []
    for i in range(n):
        name = f"svc-{i:03d}"
        svc: dict[str, Any] = {"name": name, "port": 8000 + i % 1000, "allowFrom": ["client"]}
        if i:
            svc["allowFrom"].insert(0, f"svc-{i - 1:03d}")
        if i % 10 == 0:
            svc["versions"] = ["v1", "v2"]
            svc["expose"] = True
            svc["routes"] = [
                {"prefix": f"/{name}", "destinations": [{"subset": "v1", "weight": 90}, {"subset": "v2", "weight": 10}]}
            ]
        out.append(svc)
    return out


def stack_config(n: int) -> dict[str, Any]:
    """A kind stack file's ``config`` with N generated services (observability on, as in dev)."""
    return {
        "mesh-platform:cluster": {"provider": "kind", "name": f"mesh-bench-{n}", "workers": 1},
        "mesh-platform:observability": {"enabled": True},
        "mesh-platform:apps": {"services": services(n)},
    }


def write_stack(n: int, directory: Path) -> Path:
    path = directory / f"Pulumi.bench-{n}.yaml"
    path.write_text(yaml.safe_dump({"config": stack_config(n)}, sort_keys=False))
    return path


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu() -> float:
    """CPU seconds of this process and of its finished workers."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def measure(what: str, stack_file: Path) -> dict[str, float]:
    """Time one render or verify of ``stack_file`` in this interpreter (call it in a fresh one)."""
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    start, cpu = time.perf_counter(), _cpu()
    if what == "render":
        engine.run(stack, config_file=stack_file)
    else:
        from offline.verify import pipeline

        result = pipeline.verify_stack(stack, stack_file)
        if not result.ok:
            raise SystemExit(f"verify found violations in a generated stack: {result.violations[:3]}")
    return {"seconds": time.perf_counter() - start, "cpu": _cpu() - cpu, "peak_mib": _peak_mib()}


def _fresh(args: list[str]) -> str:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=engine.ROOT, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return done.stdout.strip().splitlines()[-1]


def growth(verify_seconds: dict[int, float]) -> str:
    """How verify's time grows from each size to the next, beside how the number of services grows."""
    sizes = sorted(verify_seconds)
    steps = [
        f"{a}→{b}: x{verify_seconds[b] / verify_seconds[a]:.2f} for x{b / a:g} the services" for a, b in itertools.pairwise(sizes)
    ]
    return "verify time growth: " + ("; ".join(steps) if steps else "one size only")


def table(sizes: list[int]) -> list[str]:
    import_s = min(float(_fresh(["-c", _IMPORT])) for _ in range(3))
    lines = [
        f"import pulumi, pulumi_kubernetes: {import_s:.2f} s (fresh interpreter, best of 3)",
        "",
        "| N | render s | render x | verify s | verify x | peak MiB | render CPU s | verify CPU s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    verify_seconds: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as tmp:
        for n in sizes:
            path = write_stack(n, Path(tmp))
            got = {
                what: json.loads(_fresh(["-m", "offline.verify.bench", "--one", what, str(path)]))
                for what in ("render", "verify")
            }
            render_s, verify_s = got["render"]["seconds"], got["verify"]["seconds"]
            peak = max(g["peak_mib"] for g in got.values())
            lines.append(
                f"| {n} | {render_s:.1f} | {render_s / import_s:.1f} | {verify_s:.1f} | {verify_s / import_s:.1f} | {peak:.0f} "
                f"| {got['render']['cpu']:.1f} | {got['verify']['cpu']:.1f} |"
            )
            print(lines[-1], flush=True)
            verify_seconds[n] = verify_s
    lines += ["", growth(verify_seconds)]
    print("\n".join(lines[-2:]), flush=True)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = cli.parser("python -m offline.verify.bench", __doc__, exits=[(0, "every run succeeded"), (1, "a run failed")])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), metavar="N", help="numbers of services")
    parser.add_argument("--one", nargs=2, metavar=("render|verify", "STACK_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        what, path = args.one
        if what not in ("render", "verify"):
            parser.error("--one takes render or verify")
        print(json.dumps(measure(what, Path(path))))
        return 0
    if any(n < 1 for n in args.sizes):
        parser.error("--sizes must be positive")
    table(args.sizes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
