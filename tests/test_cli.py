"""offline/cli.py: one error type → one line and exit 2; every command's help documents itself."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pulumi
import pytest

from offline import cli
from offline.engine import ROOT

#: Each command and the environment variables its help must name.
COMMANDS = {
    "ops.backend": ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"),
    "ops.preflight": ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"),
    "ops.labs": ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"),
    "offline.render": (),
    "offline.verify": (),
    "offline.verify.bench": (),
}


def _commands() -> list[str]:
    """Every ``python -m`` command of offline/ and ops/: each module that runs as a script."""
    out = []
    for path in sorted([*(ROOT / "offline").rglob("*.py"), *(ROOT / "ops").glob("*.py")]):
        if 'if __name__ == "__main__":' in path.read_text():
            parts = path.relative_to(ROOT).with_suffix("").parts
            out.append(".".join(parts[:-1] if parts[-1] == "__main__" else parts))
    return out


def test_every_command_is_walked() -> None:
    assert sorted(_commands()) == sorted(COMMANDS), "a command's --help is not checked: add it to COMMANDS"


def _parser_of(module: str, monkeypatch) -> argparse.ArgumentParser:
    made: list[argparse.ArgumentParser] = []
    real = cli.parser

    def keep(*args, **kwargs) -> argparse.ArgumentParser:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(cli, "parser", keep)
    with pytest.raises(SystemExit):
        mod = importlib.import_module(module)
        if not hasattr(mod, "main"):  # a package run as a command: its __main__
            mod = importlib.import_module(f"{module}.__main__")
        mod.main(["--help"])
    return made[0]


@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_every_option_has_help_and_every_default_is_shown(module: str, monkeypatch, capsys) -> None:
    parser = _parser_of(module, monkeypatch)
    out = capsys.readouterr().out
    for action in parser._actions:
        assert action.help, f"{module}: {action.dest} has no help"
        if action.help == argparse.SUPPRESS:  # internal (bench's --one: one measurement of a run)
            continue
        for flag in action.option_strings:
            assert flag in out
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert f"(default: {action.default})" in " ".join(out.split()), f"{module} {action.dest}"
    for name in COMMANDS[module]:
        assert f"  {name} " in out, f"{module} help does not name {name}"
    assert "exit status:" in out and f"  {cli.USAGE}  bad input" in out


@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_help_runs_as_a_module(module: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0 and "exit status:" in proc.stdout, proc.stderr


@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_an_unknown_option_is_exit_2_without_a_traceback(module: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", module, "--no-such-option"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (cli.UsageError("bad --x"), "error: bad --x\n"),
        (pulumi.RunError("invalid stack configuration"), "error: invalid stack configuration\n"),
        (FileNotFoundError(2, "No such file or directory", "f.json"), "error: f.json: No such file or directory\n"),
        (KeyboardInterrupt(), "error: interrupted\n"),
    ],
)
def test_run_turns_each_error_into_one_line_and_exit_2(capsys, error: BaseException, line: str) -> None:
    def main(argv):
        raise error

    assert cli.run(main, []) == 2
    assert capsys.readouterr().err == line


def test_run_lets_a_bug_through() -> None:
    def main(argv):
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        cli.run(main, [])


#: What each command says run with a Python that lacks the pinned packages (``-S``: no site
#: packages at all): one line and exit 2, or, for what needs only the standard library, its work.
@pytest.mark.parametrize("module", sorted(COMMANDS))
def test_outside_the_virtualenv_each_command_is_one_line(module: str) -> None:
    import os

    args = {"ops.preflight": ["--stack", "staging"], "ops.labs": ["--help"]}.get(module, ["--stack", "dev"])
    proc = subprocess.run(
        [os.path.realpath(sys.executable), "-S", "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if module == "ops.labs":  # the Makefile's destroy runs it on the standard library alone
        assert proc.returncode == 0
        return
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: python -m {module} needs the project's virtualenv (not installed for ")
    assert f"`.venv/bin/python -m {module} ...`" in proc.stderr and proc.stderr.count("\n") == 1
