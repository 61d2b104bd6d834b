"""Every private name of a third-party library that ``offline`` touches, one module per library.

- ``pulumi_sdk``: the Pulumi Python SDK's internals the mock-engine harness (``offline.engine``) uses;
- ``nca``: network-config-analyzer's internals the verifier's connectivity check
  (``offline.verify.connectivity``) uses.

Each module's docstring names every private name it touches, why, and what breaks if it changes,
and each holds the library versions it was tested with (``TESTED``); an installed version not in
that list is refused, or where a path free of those names exists, that path runs instead. Nothing
else in this tree may reach into those libraries' internals. Imports the libraries it fences and
``offline.cli``, nothing of the product, ``ops`` or ``tests`` (tests/test_layers.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from offline.cli import UsageError


class UntestedVersionError(UsageError):
    """An installed library version that a fence was not tested with; the message is one line."""


def untested(dist: str, version: str, tested: Sequence[str], fence: str, uses: str) -> str:
    """One line: ``dist`` ``version`` is installed, ``uses`` its internals, tested with ``tested``."""
    return f"{dist} {version} is installed, but {uses} internals of {dist} ({fence}) tested with {dist} {', '.join(tested)} only"
