"""network-config-analyzer (NCA)'s internals that the verifier's connectivity check uses.

``offline.verify.connectivity`` runs NCA through its command line (:func:`run`: ``nca_main`` with
the options ``--connectivity``, ``-r``, ``--output_format txt_no_fw_rules`` and ``--file_out``) and
parses the text it writes. On its fast path it also replaces two of NCA's private methods. Tested
with network-config-analyzer 2.1.0 (``TESTED``; the pin of requirements-dev.txt).

An installed version not in ``TESTED`` is not refused: the faithful path needs none of the names
below, so :func:`speedups` says so in one line on standard error (once per process, naming the
tested versions) and the fast path runs NCA as shipped instead: each layer still in a worker of its
own, slower at scale (the O(P²) fold below), NCA's own answers.
What no version check covers: NCA's command-line options and its ``txt_no_fw_rules`` text, which
``connectivity.parse`` reads on either path. To adopt another version: pin it, add it to
``TESTED``, and run tests/test_verify_fast.py, which compares the fast path's flows with NCA's own on
the stacks and on generated ones of up to 50 services.

The fast path only (tested versions):

- ``nca.NetworkConfig.NetworkLayer.NetworkLayer.collect_policies_conns_optimized(self, is_ingress,
  captured_func)``: :func:`balanced_unions` replaces it. NCA folds a layer's policies into one
  growing connection set, subtracting the deny and pass sets at each step even when they are empty;
  each step rebuilds the whole set, so a layer of P policies costs O(P²). When no policy of the
  layer denies or passes anything, the result is the union of the allowed sets, merged pairwise in
  O(P log P). It reads ``policies_list``, ``allowed_connections(is_ingress)`` and the
  ``captured``, ``allowed_conns``, ``denied_conns``, ``pass_conns`` of
  ``nca.Resources.PolicyResources.NetworkPolicy.PolicyConnections``, and calls NCA's own method for
  a layer with a deny or pass set. If these change meaning, flows differ from NCA's own
  (tests/test_verify_fast.py fails); if they are renamed, AttributeError at the first layer.
- ``nca.NetworkConfig.NetworkConfigQuery.ConnectivityMapQuery.convert_props_to_split_by_tcp(props)``
  (a staticmethod): :func:`tcp_part_only` keeps its TCP part and returns
  ``nca.CoreDS.ConnectivityProperties.ConnectivityProperties.make_empty_props()`` as the non-TCP
  part. The mesh layer alone is read for TCP only, and with Istio alone every pair of pods may talk
  non-TCP: formatting those pairs was most of that run at 300 services. If the split's order or
  meaning changes, the mesh flows differ from NCA's own (tests/test_verify_fast.py).

Both paths on a tested version (quiet, not speed): ``nca.Utils.NcaLogger.NcaLogger`` (a singleton)
is muted and told not to collect its messages; on an untested version it is left alone.

Every version: NCA prints to the streams it bound at import time, so :func:`run` sends file
descriptors 1 and 2 to a log file for the run (its last 500 characters are in the error when NCA
writes no result) and restores them after. No private name; what NCA prints is read by nobody.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any
from unittest import mock

from offline.thirdparty import untested

DIST = "network-config-analyzer"
#: The NCA versions this module was tested with (tests/test_thirdparty.py holds requirements-dev.txt's pin here).
TESTED = ("2.1.0",)

#: The untested versions :func:`speedups` has told about in this process.
_told: set[str] = set()


@functools.cache
def installed() -> str:
    """The installed version (read once per process; forked workers inherit it)."""
    return metadata.version(DIST)


def tested() -> bool:
    return installed() in TESTED


def speedups() -> bool:
    """Whether the fast path may replace NCA's private methods: on a tested version only. On any
    other, one line on standard error (once per version and process) says so."""
    version = installed()
    if version in TESTED:
        return True
    if version not in _told:
        _told.add(version)
        reason = untested(DIST, version, TESTED, "offline/thirdparty/nca.py", "the verifier's fast path replaces")
        print(f"note: {reason}: NCA runs as shipped (slower, its own answers)", file=sys.stderr)
    return False


def preload() -> None:
    """Import NCA (a second or so): before forking workers, so that each inherits it."""
    import nca.nca_cli  # noqa: F401


def run(argv: list[str], log: Path, *, patched: bool, tcp_only: bool = False) -> None:
    """``nca_main(argv)`` with its output in ``log``; ``patched``: with :func:`balanced_unions`, and
    with :func:`tcp_part_only` if ``tcp_only`` (the caller reads only the map's TCP part). Neither
    on a version not in ``TESTED``."""
    from nca.nca_cli import nca_main  # heavy import: only when flows are asked for

    known = tested()
    patched = patched and known
    if known:
        _quiet_logger()
    with (
        _captured_output(log),
        balanced_unions() if patched else contextlib.nullcontext(),
        tcp_part_only() if patched and tcp_only else contextlib.nullcontext(),
    ):
        nca_main(argv)


def _quiet_logger() -> None:
    from nca.Utils.NcaLogger import NcaLogger

    logger = NcaLogger()
    logger.mute()
    logger.dont_collect_msgs()


@contextlib.contextmanager
def balanced_unions() -> Iterator[None]:
    """Have NCA merge a layer's allow-only policies pairwise instead of one by one.

    When no policy of the layer denies or passes anything (Kubernetes NetworkPolicies never do;
    Istio ALLOW policies neither), every subtraction of NCA's fold removes nothing and the result
    is the plain union of the policies' allowed sets. Sets are canonical (``CanonicalHyperCubeSet``),
    so the order of the unions does not change the result. A layer with a deny or pass set runs
    NCA's own fold.
    """
    from nca.NetworkConfig.NetworkLayer import NetworkLayer
    from nca.Resources.PolicyResources.NetworkPolicy import PolicyConnections

    fold = NetworkLayer.collect_policies_conns_optimized

    def collect(self: Any, is_ingress: bool, captured_func: Any = lambda policy: True) -> Any:
        conns = [(p, p.allowed_connections(is_ingress)) for p in self.policies_list]
        conns = [(p, c) for p, c in conns if c.captured]
        if any(c.denied_conns or c.pass_conns for _, c in conns):
            return fold(self, is_ingress, captured_func)
        res = PolicyConnections()
        for policy, c in conns:
            if captured_func(policy):
                res.captured |= c.captured
        parts = [c.allowed_conns for _, c in conns if c.allowed_conns]
        while len(parts) > 1:
            parts = [parts[i] | parts[i + 1] if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
        for part in parts:
            res.allowed_conns |= part
        return res

    with mock.patch.object(NetworkLayer, "collect_policies_conns_optimized", collect):
        yield


@contextlib.contextmanager
def tcp_part_only() -> Iterator[None]:
    """Have NCA's connectivity map leave its non-TCP part empty; the TCP part is NCA's own."""
    from nca.CoreDS.ConnectivityProperties import ConnectivityProperties
    from nca.NetworkConfig.NetworkConfigQuery import ConnectivityMapQuery

    split = ConnectivityMapQuery.convert_props_to_split_by_tcp

    def tcp_part(props: Any) -> tuple[Any, Any]:
        tcp, _ = split(props)
        return tcp, ConnectivityProperties.make_empty_props()

    with mock.patch.object(ConnectivityMapQuery, "convert_props_to_split_by_tcp", staticmethod(tcp_part)):
        yield


@contextlib.contextmanager
def _captured_output(path: Path) -> Iterator[None]:
    """Send fds 1 and 2 to ``path``: NCA prints its chatter to streams bound at import time."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with path.open("w") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
