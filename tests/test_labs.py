"""tools.labs: expired lab stacks from a recorded `pulumi stack ls --json` and recorded tags."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tools.labs import expired, is_lab, kind_cluster_of, main, reap

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


KIND_LAB = {
    "deployment": {
        "resources": [
            {"urn": "urn:kc", "type": "mesh-platform:index:KindCluster"},
            # A first `up` that failed after creating the cluster: the command is in the state.
            {
                "urn": "urn:cmd",
                "type": "command:local:Command",
                "parent": "urn:kc",
                "inputs": {"environment": {"KIND_CLUSTER": "mesh-lab-alice"}},
            },
        ]
    }
}
EXISTING_LAB = {"deployment": {"resources": [{"urn": "urn:ec", "type": "mesh-platform:index:ExistingCluster"}]}}


def test_the_kind_cluster_a_stack_created_comes_from_its_state() -> None:
    assert kind_cluster_of(KIND_LAB) == "mesh-lab-alice"
    assert kind_cluster_of(EXISTING_LAB) is None
    assert kind_cluster_of({}) is None
    # A stack that says its cluster is not kind never has one deleted.
    said = {"type": "pulumi:pulumi:Stack", "urn": "urn:stack", "outputs": {"clusterKind": "existing"}}
    assert kind_cluster_of({"deployment": {"resources": [said, *KIND_LAB["deployment"]["resources"]]}}) is None
    said["outputs"]["clusterKind"] = "kind"
    assert kind_cluster_of({"deployment": {"resources": [said, *KIND_LAB["deployment"]["resources"]]}}) == "mesh-lab-alice"
    # A command elsewhere in the stack is not the cluster.
    stray = {
        "deployment": {
            "resources": [{"urn": "u", "type": "command:local:Command", "inputs": {"environment": {"KIND_CLUSTER": "x"}}}]
        }
    }
    assert kind_cluster_of(stray) is None


class FakePulumi:
    """Answers like the CLI: each stack's export, and failures where told."""

    def __init__(self, exports: dict[str, dict], failing: set[str] = frozenset()) -> None:
        self.exports, self.failing, self.calls = exports, failing, []

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        self.calls.append(" ".join(args))
        stack = args[args.index("--stack") + 1]
        if any(f in " ".join(args) for f in self.failing):
            return subprocess.CompletedProcess(["pulumi", "--non-interactive", *args], 255, "", "error: boom")
        out = json.dumps(self.exports[stack]) if args[:2] == ("stack", "export") else ""
        return subprocess.CompletedProcess(["pulumi", "--non-interactive", *args], 0, out, "")


def test_reaper_drops_kind_labs_state_and_destroys_the_others() -> None:
    fake = FakePulumi({"lab-alice": KIND_LAB, "lab-shared": EXISTING_LAB})
    assert reap(["lab-alice", "lab-shared"], fake) == 0
    assert fake.calls == [
        "stack export --stack lab-alice",
        "stack rm --force --yes --preserve-config --stack lab-alice",
        "stack export --stack lab-shared",
        "destroy --yes --skip-preview --stack lab-shared",
        "stack rm --yes --preserve-config --stack lab-shared",
    ]


def test_reaper_counts_every_failure_and_goes_on() -> None:
    fake = FakePulumi(
        {"lab-a": EXISTING_LAB, "lab-b": KIND_LAB, "lab-c": EXISTING_LAB},
        failing={"destroy --yes --skip-preview --stack lab-a", "export --stack lab-b"},
    )
    assert reap(["lab-a", "lab-b", "lab-c"], fake) == 2
    assert "stack rm --yes --preserve-config --stack lab-a" not in fake.calls, "a failed destroy keeps the state"
    assert not [c for c in fake.calls if "rm" in c and "lab-b" in c], "an unreadable state is never dropped"
    assert fake.calls[-1] == "stack rm --yes --preserve-config --stack lab-c"


def test_reap_command_fails_the_job_when_a_lab_was_not_torn_down(monkeypatch, capsys) -> None:
    import tools.labs as labs

    monkeypatch.setattr(labs, "reap", lambda names: len(names))
    args = ["reap", "--stacks-json", str(DATA / "stack-ls.json"), "--tags-json", str(DATA / "stack-tags.json")]
    assert main([*args, "--now", "2026-11-27T17:00:00Z"]) == 1
    monkeypatch.setattr(labs, "reap", lambda names: 0)
    assert main([*args, "--now", "2026-11-27T17:00:00Z"]) == 0
    assert "2 of 2 expired lab stack(s) torn down" in capsys.readouterr().out
