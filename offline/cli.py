"""What every ``python -m offline.*`` and ``python -m ops.*`` command shares: one error type, one way out, help that answers.

A command raises :class:`UsageError` (or lets ``pulumi.RunError`` through) for anything the user can
fix; :func:`run` turns it into one line on standard error and exit status 2, never a traceback.
:func:`parser` builds an ``argparse`` parser whose ``--help`` shows each option's default and ends
with the environment variables the command reads and its exit codes.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable, Sequence

try:
    from pulumi import RunError
except ImportError:  # ops.labs runs where only the standard library is (the Makefile's destroy)

    class RunError(Exception):  # type: ignore[no-redef]
        """Stands in for pulumi.RunError where pulumi is not installed (nothing can raise it)."""


#: Exit status of a command given input it cannot use (argparse uses 2 as well).
USAGE = 2

#: Every environment variable a command may read, and what for.
ENV_VARS = {
    "AWS_PROFILE": "the AWS credentials profile (boto3's default chain when unset)",
    "AWS_REGION": "the AWS region boto3 uses when a command is not given one",
    "AWS_ENDPOINT_URL": "another AWS endpoint (a local S3/KMS stand-in such as moto)",
    "PULUMI_BACKEND_URL": "the Pulumi state backend (default: the one `make` uses, file://<checkout>/.pulumi-state)",
    "PULUMI_CONFIG_PASSPHRASE": "the passphrase of a passphrase-encrypted stack (or PULUMI_CONFIG_PASSPHRASE_FILE)",
}


def running_module() -> str:
    """The module ``python -m`` runs (``offline.verify``), or "" when Python was started otherwise."""
    argv = getattr(sys, "orig_argv", [])
    return argv[argv.index("-m") + 1] if "-m" in argv[:-1] else ""


def needs_venv(command: str, *modules: str) -> None:
    """Exit 2 with one line when a module ``command`` needs is not installed: Python runs outside ``.venv``."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        print(
            f"error: python -m {command} needs the project's virtualenv (not installed for {sys.executable}: "
            f"{', '.join(missing)}): run `make venv` once, then `.venv/bin/python -m {command} ...` (or its make target)",
            file=sys.stderr,
        )
        raise SystemExit(USAGE)


def note_defaults(config_file: object, stack: str) -> None:
    """On standard error, the one line naming the defaults a stack runs on when it sets nothing."""
    from mesh_platform.settings import defaults_used
    from offline import engine

    line = defaults_used(engine.settings(config_file, stack))  # type: ignore[arg-type]
    if line:
        print(f"note: {line}", file=sys.stderr)


class UsageError(Exception):
    """Input the command cannot use; its message is the one line the user sees."""


def parser(prog: str, doc: str, *, env: Sequence[str] = (), exits: Sequence[tuple[int, str]] = ()) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` whose help shows defaults, ``env`` variables and the exit codes."""
    lines = []
    if env:
        lines.append("environment:")
        lines += [f"  {name:26} {ENV_VARS[name]}" for name in env]
    lines.append("exit status:")
    lines += [f"  {code}  {what}" for code, what in exits]
    lines.append(f"  {USAGE}  bad input (an option, a file, a name): one line on standard error, nothing changed")
    return argparse.ArgumentParser(
        prog=prog,
        description=doc,
        epilog="\n".join(lines),
        formatter_class=_Formatter,
    )


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's and epilog's line breaks; appends ``(default: X)`` where there is one."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if "%(default)" in text or not action.option_strings or default in (None, False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Call ``main``; a :class:`UsageError`, ``pulumi.RunError`` or unreadable file becomes exit 2."""
    try:
        return main(argv)
    except (UsageError, RunError) as err:
        return fail(str(err))
    except OSError as err:
        return fail(f"{err.filename}: {err.strerror}" if err.filename else str(err))
    except KeyboardInterrupt:
        return fail("interrupted")


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return USAGE
