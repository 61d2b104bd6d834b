"""Lab stacks that tear themselves down: which lab stacks are past their expiry.

    python -m ops.labs expired [--stacks-json FILE] [--now 2026-01-01T00:00:00Z]
    python -m ops.labs reap                    # tear down the expired ones; exit 1 if any failed
    python -m ops.labs kind-cluster --stack S  # the kind cluster stack S created, if any

A lab stack is ``lab`` or ``lab-<anything>``. ``make up`` tags it ``mesh-platform:expires`` with an
RFC 3339 UTC time. ``expired`` reads the stacks from ``pulumi stack ls --json`` (or a recorded copy
of it), each lab stack's tags from ``pulumi stack tag ls --json``, and prints the names of those
whose expiry has passed, one per line, for a scheduled job to destroy. A lab stack without the tag
expires ``DEFAULT_TTL`` after its last update, so a forgotten tag never keeps a lab alive forever.
A stack with an update in progress is never listed.

pulumi is asked about the backend in PULUMI_BACKEND_URL or, when that is unset, the one ``make``
uses for local stacks (file://<checkout>/.pulumi-state); the command says which on standard error.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from offline import cli

EXPIRES_TAG = "mesh-platform:expires"
DEFAULT_TTL = timedelta(hours=8)
_LAB = re.compile(r"^(?:[^/]+/)*lab(?:-[a-z0-9-]+)?$")


def is_lab(name: str) -> bool:
    """``lab``, ``lab-alice``, and the same with an ``org/project/`` prefix."""
    return bool(_LAB.match(name))


def _time(text: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def expiry(stack: dict[str, Any], tags: dict[str, str]) -> datetime | None:
    tagged = _time(tags.get(EXPIRES_TAG, ""))
    if tagged:
        return tagged
    last = _time(stack.get("lastUpdate", ""))
    return last + DEFAULT_TTL if last else None


def expired(stacks: Iterable[dict[str, Any]], tags_of: Callable[[str], dict[str, str]], now: datetime) -> list[str]:
    out = []
    for stack in stacks:
        name = stack.get("name", "")
        if not is_lab(name) or stack.get("updateInProgress"):
            continue
        when = expiry(stack, tags_of(name))
        if when is not None and when <= now:
            out.append(name)
    return sorted(out)


#: The state backend ``make`` uses for local stacks (Makefile, BACKEND), when PULUMI_BACKEND_URL is unset.
DEFAULT_BACKEND = f"file://{Path(__file__).resolve().parent.parent}/.pulumi-state"


def backend() -> str:
    """The backend pulumi is asked about: PULUMI_BACKEND_URL, else the one ``make`` uses."""
    return os.environ.get("PULUMI_BACKEND_URL") or DEFAULT_BACKEND


def _pulumi_env() -> dict[str, str]:
    return {**os.environ, "PULUMI_BACKEND_URL": backend()}


def _pulumi_json(*args: str) -> Any:
    command = f"pulumi {' '.join(args)} --json"
    try:
        proc = subprocess.run(
            ["pulumi", "--non-interactive", *args, "--json"], capture_output=True, text=True, check=False, env=_pulumi_env()
        )
    except FileNotFoundError:
        raise cli.UsageError(
            'pulumi is not on PATH; install the Pulumi CLI (README.md, "Prerequisites") or pass --stacks-json'
        ) from None
    except OSError as err:
        raise cli.UsageError(f"cannot run pulumi: {err.strerror}") from None
    if proc.returncode != 0:
        detail = " ".join(proc.stderr.split())[:300] or f"exit status {proc.returncode}"
        raise cli.UsageError(f"{command} failed on backend {backend()}: {detail}")
    return _json(proc.stdout or "null", command)


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise cli.UsageError(f"{what} is not JSON ({err.msg} at line {err.lineno} column {err.colno})") from None


def _stacks(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(s, dict) and isinstance(s.get("name"), str) for s in value):
        raise cli.UsageError(f"{what} is not a list of stacks with names (the shape of `pulumi stack ls --json`)")
    return value


def _tags(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise cli.UsageError(f"{what} is not an object of tag names to values")
    return {k: v for k, v in value.items() if isinstance(v, str)}


def main(argv: list[str] | None = None) -> int:
    return cli.run(_main, argv)


def _main(argv: list[str] | None) -> int:
    parser = cli.parser(
        "python -m ops.labs",
        __doc__,
        env=["PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "AWS_PROFILE", "AWS_REGION"],
        exits=[(0, "done (expired: the names listed, possibly none)"), (1, "reap: a lab could not be torn down")],
    )
    parser.add_argument(
        "command",
        choices=["expired", "reap", "kind-cluster"],
        help="expired: list expired lab stacks; reap: tear them down; kind-cluster: the kind cluster --stack created",
    )
    parser.add_argument("--stack", help="kind-cluster: the stack whose state to read (required there)")
    parser.add_argument("--stacks-json", type=Path, help="a recorded `pulumi stack ls --json` (default: run it)")
    parser.add_argument("--tags-json", type=Path, help="recorded tags: {stack: {tag: value}} (default: ask pulumi)")
    parser.add_argument("--now", help="RFC 3339 time to compare against (default: now)")
    args = parser.parse_args(argv)
    now = _time(args.now) if args.now else datetime.now(UTC)
    if now is None:
        raise cli.UsageError(f"--now {args.now!r} is not an RFC 3339 time such as 2026-01-01T00:00:00Z")
    if args.command == "kind-cluster":
        if not args.stack:
            raise cli.UsageError("kind-cluster needs --stack")
        try:
            print(kind_cluster_of(_export(args.stack)) or "")
        except (RuntimeError, json.JSONDecodeError, AttributeError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        return 0
    if args.stacks_json:
        stacks = _stacks(_json(args.stacks_json.read_text(), str(args.stacks_json)), str(args.stacks_json))
    else:
        print(f"asking backend {backend()} for its stacks", file=sys.stderr)
        stacks = _stacks(_pulumi_json("stack", "ls"), "pulumi stack ls --json")
    if args.tags_json:
        recorded = _json(args.tags_json.read_text(), str(args.tags_json))
        if not isinstance(recorded, dict):
            raise cli.UsageError(f"{args.tags_json} is not an object of stack names to tags")
        tags_of: Callable[[str], dict[str, str]] = lambda name: _tags(recorded.get(name), f"{args.tags_json}: {name}")  # noqa: E731
    else:
        tags_of = lambda name: _tags(  # noqa: E731
            _pulumi_json("stack", "tag", "ls", "--stack", name), f"pulumi stack tag ls --stack {name} --json"
        )
    names = expired(stacks, tags_of, now)
    if args.command == "reap":
        failures = reap(names)
        print(f"{len(names) - failures} of {len(names)} expired lab stack(s) torn down")
        return 1 if failures else 0
    for name in names:
        print(name)
    return 0


# --- teardown and the reaper -------------------------------------------------------------------
#
# A kind lab's resources all live in its kind cluster, so it is torn down by deleting that cluster
# and then the stack's state (`pulumi stack rm --force`): `pulumi destroy` cannot, because the
# Kubernetes provider refuses to delete a Helm release on an unreachable cluster whatever
# deleteUnreachable says (pulumi-kubernetes provider.go Delete; pulumi-kubernetes#2675).

KIND_COMMAND = "command:local:Command"
KIND_COMPONENT = "mesh-platform:index:KindCluster"


def kind_cluster_of(export: dict[str, Any]) -> str | None:
    """The kind cluster a stack created, from its ``pulumi stack export``; None if it made none.

    Read from the state, not the stack outputs: a failed first ``up`` leaves the cluster and its
    command in the state but no outputs.
    """
    resources = (export.get("deployment") or {}).get("resources") or []
    # The stack's own word first: its clusterKind output, when its last update got that far.
    said = {(r.get("outputs") or {}).get("clusterKind") for r in resources if r.get("type") == "pulumi:pulumi:Stack"}
    if said - {None, "kind"}:
        return None
    components = {r.get("urn") for r in resources if r.get("type") == KIND_COMPONENT}
    for r in resources:
        if r.get("type") == KIND_COMMAND and r.get("parent") in components:
            name = ((r.get("inputs") or {}).get("environment") or {}).get("KIND_CLUSTER")
            if isinstance(name, str) and name:
                return name
    return None


def _pulumi(*args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            ["pulumi", "--non-interactive", *args], capture_output=True, text=True, check=False, env=_pulumi_env()
        )
    except OSError as err:
        raise RuntimeError(f"cannot run pulumi: {err.strerror}") from None


def _export(stack: str) -> dict[str, Any]:
    proc = _pulumi("stack", "export", "--stack", stack)
    if proc.returncode != 0:
        raise RuntimeError(f"pulumi stack export --stack {stack}: {proc.stderr.strip() or 'failed'}")
    return json.loads(proc.stdout or "{}")


def reap(stacks: Iterable[str], run: Callable[..., subprocess.CompletedProcess] = _pulumi) -> int:
    """Tear down each expired lab; returns how many could not be torn down.

    A kind lab's cluster runs on its owner's machine, out of this job's reach: its state is
    dropped (the owner's ``kind delete cluster`` removes the rest). Any other lab (an existing
    cluster) is destroyed resource by resource. Stack files are never removed.
    """
    failures = 0
    for stack in stacks:
        try:
            export = json.loads(_checked(run("stack", "export", "--stack", stack)).stdout or "{}")
            cluster = kind_cluster_of(export)
            if cluster:
                print(f"{stack}: kind cluster {cluster} runs on its owner's machine; dropping the stack's state")
                _checked(run("stack", "rm", "--force", "--yes", "--preserve-config", "--stack", stack))
            else:
                print(f"{stack}: destroying its resources")
                _checked(run("destroy", "--yes", "--skip-preview", "--stack", stack))
                _checked(run("stack", "rm", "--yes", "--preserve-config", "--stack", stack))
        except (RuntimeError, json.JSONDecodeError) as err:
            failures += 1
            print(f"{stack}: not torn down: {err}", file=sys.stderr)
    return failures


def _checked(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    if proc.returncode != 0:
        raise RuntimeError(f"pulumi {' '.join(proc.args[2:]) if isinstance(proc.args, list) else ''}: {proc.stderr.strip()}")
    return proc


if __name__ == "__main__":
    sys.exit(main())
