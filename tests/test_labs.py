"""ops.labs: expired lab stacks from a recorded `pulumi stack ls --json` and recorded tags."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standins import ROOT, make_standins

from ops.labs import expired, is_lab, kind_cluster_of, main, reap

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
    import ops.labs as labs

    monkeypatch.setattr(labs, "reap", lambda names: len(names))
    args = ["reap", "--stacks-json", str(DATA / "stack-ls.json"), "--tags-json", str(DATA / "stack-tags.json")]
    assert main([*args, "--now", "2026-11-27T17:00:00Z"]) == 1
    monkeypatch.setattr(labs, "reap", lambda names: 0)
    assert main([*args, "--now", "2026-11-27T17:00:00Z"]) == 0
    assert "2 of 2 expired lab stack(s) torn down" in capsys.readouterr().out


# --- the command line against a pulumi that is missing, fails or prints garbage ------------------


def _labs(s, *args: str, env: dict[str, str] | None = None, path: str | None = None) -> subprocess.CompletedProcess:
    e = s.env(env)
    if path is not None:
        e["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "ops.labs", *args], cwd=ROOT, env=e, capture_output=True, text=True, timeout=60, check=False
    )


def test_expired_without_pulumi_on_path_is_one_line_and_exit_2(tmp_path: Path) -> None:
    s = make_standins(tmp_path)
    proc = _labs(s, "expired", path=str(s.bin))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("error: pulumi is not on PATH; install the Pulumi CLI")
    assert "Traceback" not in proc.stderr


def test_expired_with_a_failing_pulumi_names_the_backend_and_exits_2(tmp_path: Path) -> None:
    s = make_standins(tmp_path, watch=("PULUMI_BACKEND_URL",))
    s.add("pulumi", "echo 'error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions' >&2; exit 255")
    proc = _labs(s, "expired", env={"PULUMI_BACKEND_URL": "s3://state?region=eu-west-1"})
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "asking backend s3://state?region=eu-west-1 for its stacks",
        "error: pulumi stack ls --json failed on backend s3://state?region=eu-west-1: error: PULUMI_ACCESS_TOKEN must "
        "be set for login during non-interactive CLI sessions",
    ]


@pytest.mark.parametrize(
    ("stdout", "says"),
    [("{not json", "is not JSON"), ('{"name": "lab"}', "is not a list of stacks"), ("[1, 2]", "is not a list of stacks")],
)
def test_expired_with_malformed_pulumi_output_exits_2(tmp_path: Path, stdout: str, says: str) -> None:
    s = make_standins(tmp_path)
    s.add("pulumi", f"echo {stdout!r}")
    proc = _labs(s, "expired")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1].startswith("error: pulumi stack ls --json") and says in proc.stderr
    assert "Traceback" not in proc.stderr


def test_expired_with_malformed_tags_exits_2(tmp_path: Path) -> None:
    s = make_standins(tmp_path)
    s.add("pulumi", 'if [ "$3" = tag ]; then echo "[oops"; else echo \'[{"name": "lab"}]\'; fi')
    proc = _labs(s, "expired")
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-1] == (
        "error: pulumi stack tag ls --stack lab --json is not JSON (Expecting value at line 1 column 2)"
    )


def test_expired_asks_the_makefile_backend_by_default(tmp_path: Path) -> None:
    s = make_standins(tmp_path, watch=("PULUMI_BACKEND_URL",))
    s.add("pulumi", "echo '[]'")
    proc = _labs(s, "expired")
    assert proc.returncode == 0, proc.stderr
    backend = f"file://{ROOT}/.pulumi-state"
    assert proc.stderr == f"asking backend {backend} for its stacks\n"
    assert [c.env["PULUMI_BACKEND_URL"] for c in s.calls("pulumi")] == [backend]
    # The same default as the Makefile's: `make` prints its BACKEND for a local stack.
    make = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "--eval", "print-backend: ; @echo $(BACKEND)", "print-backend"],
        capture_output=True,
        text=True,
        check=True,
        env=s.env(),
    )
    assert make.stdout.strip() == backend


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("stacks.json", "[{]", "stacks.json is not JSON"),
        ("stacks.json", '{"a": 1}', "is not a list of stacks"),
        ("missing.json", None, "missing.json: No such file or directory"),
    ],
)
def test_recorded_files_that_are_unusable_exit_2(tmp_path: Path, capsys, name: str, content: str | None, says: str) -> None:
    f = tmp_path / name
    if content is not None:
        f.write_text(content)
    assert main(["expired", "--stacks-json", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


def test_a_bad_now_exits_2(capsys) -> None:
    assert main(["expired", "--stacks-json", str(DATA / "stack-ls.json"), "--now", "tomorrow"]) == 2
    assert "is not an RFC 3339 time" in capsys.readouterr().err


def test_labs_help_names_the_backend_variable_and_exit_codes(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for text in ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "--stacks-json", "exit status:", "  2  bad input"):
        assert text in out
