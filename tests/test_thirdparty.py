"""The fences around third-party internals (offline/thirdparty): each holds the version it was tested
with, and an installed version it was not tested with is refused in one line or runs the library as
shipped."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from verify_cases import DENY_ALL, allow, netpol, shop

from offline import engine, render
from offline.thirdparty import UntestedVersionError, pulumi_sdk
from offline.thirdparty import nca as nca_fence
from offline.verify import __main__ as verify_main
from offline.verify import connectivity

UNTESTED_SDK = "3.999.0"


def _pins() -> dict[str, str]:
    """``name==version`` of requirements.txt and requirements-dev.txt."""
    pins = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (engine.ROOT / name).read_text().splitlines():
            m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", line)
            if m:
                pins[m[1].lower()] = m[2]
    return pins


def test_the_pinned_and_installed_sdk_is_one_the_fence_was_tested_with() -> None:
    assert _pins()["pulumi"] in pulumi_sdk.TESTED
    assert pulumi_sdk.installed() in pulumi_sdk.TESTED


def test_the_tested_sdk_has_every_private_name_the_fence_reads() -> None:
    # A name the SDK lacks reads as a marker that is no string (and check() refuses that SDK).
    markers = (
        pulumi_sdk.SIG_KEY,
        pulumi_sdk.SECRET_SIG,
        pulumi_sdk.RESOURCE_SIG,
        pulumi_sdk.OUTPUT_VALUE_SIG,
        pulumi_sdk.ASSET_SIG,
        pulumi_sdk.UNKNOWN,
    )
    assert all(isinstance(m, str) and m for m in markers) and len(set(markers)) == len(markers)
    assert pulumi_sdk.Monitor.__mro__[1].__name__ == "MockMonitor"


@pytest.mark.parametrize("faithful", [False, True], ids=["quick", "faithful"])
def test_an_untested_sdk_is_refused_before_the_program_runs(monkeypatch: pytest.MonkeyPatch, faithful: bool) -> None:
    monkeypatch.setattr(pulumi_sdk, "installed", lambda: UNTESTED_SDK)
    monkeypatch.setattr(engine, "read_config", lambda *_: pytest.fail("the stack was read"))
    with pytest.raises(UntestedVersionError) as err:
        engine.run("dev", faithful=faithful)
    message = str(err.value)
    assert "\n" not in message
    assert f"pulumi {UNTESTED_SDK} is installed" in message
    assert f"tested with pulumi {', '.join(pulumi_sdk.TESTED)} only" in message
    assert "offline/thirdparty/pulumi_sdk.py" in message


@pytest.mark.parametrize("command", [render.main, verify_main.main], ids=["render", "verify"])
def test_the_commands_end_on_an_untested_sdk_with_one_line_and_exit_2(monkeypatch, capsys, tmp_path, command) -> None:
    monkeypatch.setattr(pulumi_sdk, "installed", lambda: UNTESTED_SDK)
    argv = ["--stack", "dev", "--out", str(tmp_path / "out")]
    assert command(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith(f"error: pulumi {UNTESTED_SDK} is installed")
    assert f"tested with pulumi {', '.join(pulumi_sdk.TESTED)} only" in captured.err
    assert not (tmp_path / "out").exists()


UNTESTED_NCA = "2.9.0"
#: Both layers, allow-only: each of the fast path's replacements has work to do.
MESH_ALLOW = {
    "apiVersion": "security.istio.io/v1",
    "kind": "AuthorizationPolicy",
    "metadata": {"name": "api-from-frontend", "namespace": "shop"},
    "spec": {
        "selector": {"matchLabels": {"app": "api"}},
        "action": "ALLOW",
        "rules": [{"from": [{"source": {"principals": ["cluster.local/ns/shop/sa/frontend"]}}]}],
    },
}


def _shop() -> list[dict]:
    return shop(netpol("shop", "deny-all", DENY_ALL), *allow("shop", "frontend", "api", 8080), MESH_ALLOW)


def _record_entries(monkeypatch: pytest.MonkeyPatch, marks: Path, fail: bool) -> None:
    """Each of the fence's uses of NCA internals leaves a file in ``marks`` (forked workers too),
    or, with ``fail``, raises."""

    def spy(name: str, real: Any) -> Any:
        def entered(*args: Any, **kwargs: Any) -> Any:
            (marks / f"{name}-{os.getpid()}").touch()
            if fail:
                raise AssertionError(f"{name} used on an untested NCA")
            return real(*args, **kwargs)

        return entered

    for name in ("balanced_unions", "tcp_part_only", "_quiet_logger"):
        monkeypatch.setattr(nca_fence, name, spy(name, getattr(nca_fence, name)))


def test_the_pinned_and_installed_nca_is_one_the_fence_was_tested_with() -> None:
    assert _pins()["network-config-analyzer"] in nca_fence.TESTED
    assert nca_fence.installed() in nca_fence.TESTED and nca_fence.speedups()


def test_on_the_tested_nca_the_fast_path_uses_its_replacements(monkeypatch, tmp_path) -> None:
    _record_entries(monkeypatch, tmp_path, fail=False)
    assert connectivity.flows(_shop(), scope={"shop"}, fast=True)
    assert {p.name.split("-")[0] for p in tmp_path.iterdir()} == {"balanced_unions", "tcp_part_only", "_quiet_logger"}


def test_an_untested_nca_runs_as_shipped_after_one_note(monkeypatch, capfd, tmp_path) -> None:
    expected = connectivity.flows(_shop(), scope={"shop"}, fast=True)
    capfd.readouterr()
    monkeypatch.setattr(nca_fence, "installed", lambda: UNTESTED_NCA)
    monkeypatch.setattr(nca_fence, "_told", set())
    _record_entries(monkeypatch, tmp_path, fail=True)
    assert connectivity.flows(_shop(), scope={"shop"}, fast=True) == expected
    assert connectivity.flows(_shop(), scope={"shop"}, fast=False) == expected
    assert not list(tmp_path.iterdir())
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err  # once per process, not per call or worker
    assert captured.err.startswith(f"note: network-config-analyzer {UNTESTED_NCA} is installed")
    assert f"tested with network-config-analyzer {', '.join(nca_fence.TESTED)} only" in captured.err
    assert "offline/thirdparty/nca.py" in captured.err and "runs as shipped" in captured.err
