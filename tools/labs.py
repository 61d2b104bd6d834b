"""Lab stacks that tear themselves down: which lab stacks are past their expiry.

    python -m tools.labs expired [--stacks-json FILE] [--now 2026-01-01T00:00:00Z]

A lab stack is ``lab`` or ``lab-<anything>``. ``make up`` tags it ``mesh-platform:expires`` with an
RFC 3339 UTC time. ``expired`` reads the stacks from ``pulumi stack ls --json`` (or a recorded copy
of it), each lab stack's tags from ``pulumi stack tag ls --json``, and prints the names of those
whose expiry has passed, one per line, for a scheduled job to destroy. A lab stack without the tag
expires ``DEFAULT_TTL`` after its last update, so a forgotten tag never keeps a lab alive forever.
A stack with an update in progress is never listed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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


def _pulumi_json(*args: str) -> Any:
    proc = subprocess.run(["pulumi", *args, "--json"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"error: pulumi {' '.join(args)}: {proc.stderr.strip()}")
    return json.loads(proc.stdout or "null")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.labs", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["expired"])
    parser.add_argument("--stacks-json", type=Path, help="a recorded `pulumi stack ls --json` (default: run it)")
    parser.add_argument("--tags-json", type=Path, help="recorded tags: {stack: {tag: value}} (default: ask pulumi)")
    parser.add_argument("--now", help="RFC 3339 time to compare against (default: now)")
    args = parser.parse_args(argv)
    stacks = json.loads(args.stacks_json.read_text()) if args.stacks_json else _pulumi_json("stack", "ls")
    if args.tags_json:
        recorded = json.loads(args.tags_json.read_text())
        tags_of: Callable[[str], dict[str, str]] = lambda name: recorded.get(name, {})  # noqa: E731
    else:
        tags_of = lambda name: _pulumi_json("stack", "tag", "ls", "--stack", name) or {}  # noqa: E731
    now = _time(args.now) if args.now else datetime.now(UTC)
    if now is None:
        parser.error(f"--now {args.now!r} is not an RFC 3339 time")
    for name in expired(stacks or [], tags_of, now):
        print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
