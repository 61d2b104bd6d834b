"""tools.labs: expired lab stacks from a recorded `pulumi stack ls --json` and recorded tags."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tools.labs import expired, is_lab, main

DATA = Path(__file__).parent / "data"
STACKS = json.loads((DATA / "stack-ls.json").read_text())
TAGS = json.loads((DATA / "stack-tags.json").read_text())


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "lab"),
    [
        ("lab", True),
        ("lab-alice", True),
        ("acme/mesh-platform/lab-ci-4711", True),
        ("laboratory", False),
        ("staging", False),
        ("dev", False),
    ],
)
def test_which_stacks_are_labs(name, lab) -> None:
    assert is_lab(name) is lab


def test_expiry_tag_decides() -> None:
    tags = lambda n: TAGS.get(n, {})  # noqa: E731
    # 15:00: nothing tagged has expired; the untagged CI lab (updated 01:00, +8 h) has.
    assert expired(STACKS, tags, at("2026-11-27T15:00:00")) == ["acme/mesh-platform/lab-ci-4711"]
    # 17:00: 'lab' (16:00) too; lab-alice (19:30) not yet; lab-bob never while updating.
    assert expired(STACKS, tags, at("2026-11-27T17:00:00")) == ["acme/mesh-platform/lab-ci-4711", "lab"]
    assert expired(STACKS, tags, at("2026-11-28T00:00:00")) == ["acme/mesh-platform/lab-ci-4711", "lab", "lab-alice"]


def test_untagged_lab_falls_back_to_last_update_plus_ttl() -> None:
    stacks = [{"name": "lab-x", "lastUpdate": "2026-11-27T10:00:00Z"}]
    assert expired(stacks, lambda n: {}, at("2026-11-27T17:59:00")) == []
    assert expired(stacks, lambda n: {}, at("2026-11-27T18:00:00")) == ["lab-x"]


def test_unreadable_times_never_expire() -> None:
    stacks = [{"name": "lab-y"}]
    assert expired(stacks, lambda n: {"mesh-platform:expires": "soon"}, at("2030-01-01T00:00:00")) == []


def test_cli_on_recorded_output(capsys) -> None:
    args = ["expired", "--stacks-json", str(DATA / "stack-ls.json"), "--tags-json", str(DATA / "stack-tags.json")]
    assert main([*args, "--now", "2026-11-27T17:00:00Z"]) == 0
    assert capsys.readouterr().out.splitlines() == ["acme/mesh-platform/lab-ci-4711", "lab"]
