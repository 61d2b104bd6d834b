"""Every values path the stack sends to a chart exists in that chart at the pinned version.

tests/data/chart_values.yaml records, per chart, the values paths read upstream (source named
beside them) and the version they were read for. Every option combination is rendered and each
Helm values tree flattened to paths; a path the record does not list is a key Helm would drop
silently. A pinned version that differs from the recorded one fails until the chart is re-read, and
so does a source that cites no file at the pinned version's git tag (``<file>@<tag>:L<line>``), unless
it names the tag it read as the nearest stored tag, of the same minor.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from combinations import OFFERED, render

from mesh_platform import versions
from offline.verify.helm import release_values

RECORD = Path(__file__).parent / "data" / "chart_values.yaml"
#: The pin each chart's record must match.
PINS = {chart: pinned.version for chart, pinned in versions.CHARTS.items()}


@cache
def record() -> dict[str, Any]:
    return yaml.safe_load(RECORD.read_text())["charts"]


def flatten(value: Any, prefix: str = "") -> list[str]:
    """``{"a": {"b": 1}, "l": [{"c": 2}]}`` → ``["a.b", "l[].c"]``; an empty map (or a ``null``) is its own path."""
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, list) and value and all(isinstance(i, dict) for i in value):
        return [p for item in value for p in flatten(item, f"{prefix}[]")]
    return [prefix] if prefix else []


def accepted(path: str, known: list[str]) -> bool:
    for k in known:
        if path == k or (k.endswith(".*") and path.startswith(k[:-1])) or (k.endswith("[].*") and path.startswith(k[:-1])):
            return True
    return False


def sent() -> dict[tuple[str, str], set[str]]:
    """(chart, version) → every values path sent to it (values files and values), over every option combination."""
    out: dict[tuple[str, str], set[str]] = {}
    for combo in OFFERED:
        for r in render(combo).resources:
            if r.type == "kubernetes:helm.sh/v3:Release":
                key = (r.inputs["chart"], r.inputs["version"])
                out.setdefault(key, set()).update(flatten(release_values(r.inputs)))
    return out


def test_every_chart_has_a_record_for_its_pinned_version() -> None:
    for chart, pin in PINS.items():
        assert chart in record(), f"no recorded values for chart {chart}"
        assert str(record()[chart]["version"]) == pin, (
            f"{chart} is pinned at {pin} but its values were read for {record()[chart]['version']}: "
            f"re-read the chart's values at {pin} and update {RECORD.name}"
        )
        assert record()[chart]["sources"], f"{chart}: name where the values were read"


def test_every_sent_values_path_exists_in_its_chart() -> None:
    paths = sent()
    assert {chart for chart, _ in paths} == set(PINS), "a chart without a record, or a record for no chart"
    unknown = []
    for (chart, version), got in sorted(paths.items()):
        rec = record()[chart]
        assert str(rec["version"]) == version, f"{chart} {version} is sent but {rec['version']} was read"
        unknown += [f"{chart} {version}: {p}" for p in sorted(got) if not accepted(p, rec["paths"])]
    assert unknown == [], "values paths the charts do not have (Helm drops them silently):\n" + "\n".join(unknown)


@pytest.mark.parametrize(
    ("path", "known", "ok"),
    [
        ("a.b", ["a.b"], True),
        ("a.b.c", ["a.b.*"], True),
        ("a.bc", ["a.b.*"], False),
        ("l[].x.y", ["l[].*"], True),
        ("istio_namespace", ["auth.strategy"], False),
    ],
)
def test_the_path_matching_itself(path, known, ok) -> None:
    assert accepted(path, known) is ok


def test_a_dead_key_and_a_bump_without_rereading_are_caught(monkeypatch) -> None:
    # The dead Kiali key this record was made to catch, the deprecated name of a live one, and a
    # bumped pin with an old record.
    assert not accepted("istio_namespace", record()["kiali-server"]["paths"])
    assert not accepted("external_services.tracing.in_cluster_url", record()["kiali-server"]["paths"])
    assert accepted("external_services.tracing.internal_url", record()["kiali-server"]["paths"])
    assert not accepted("installCRDs", record()["cert-manager"]["paths"])
    monkeypatch.setitem(PINS, "istiod", "1.31.0")
    with pytest.raises(AssertionError, match=r"re-read the chart's values at 1\.31\.0"):
        test_every_chart_has_a_record_for_its_pinned_version()


# --- every source cites the pinned version's tag ------------------------------------------------

#: ``<file>@<tag>:L<line>`` (or ``<file> @<tag>``) in a source: the git tag the file was read at.
CITED_TAG = re.compile(r"@ ?([0-9A-Za-z][\w.+-]*?)(?=:L\d|[\s,;)]|$)")
#: Charts whose sources do not all cite the pinned tag yet (none today). A chart listed here must still
#: fail the check below, so it leaves the set once its sources say so; every other chart must pass.
NOT_YET_AT_TAGS: set[str] = set()


def _version_of(tag: str) -> str:
    """``prometheus-29.25.0`` → ``29.25.0``, ``v1.21.1`` → ``1.21.1``: the version a chart tag is for."""
    return re.sub(r"^[A-Za-z][\w.]*-(?=v?\d)", "", tag).removeprefix("v")


def citation_problems(chart: str, rec: dict) -> list[str]:
    """What in a chart's record cites no tag of its pinned version (nor a nearest stored tag said so)."""
    version = str(rec["version"]).removeprefix("v")
    if not rec["paths"]:
        return []  # nothing sent, nothing read
    out = []
    for source in rec["sources"]:
        tags = CITED_TAG.findall(source)
        if not tags or not re.search(r"\bL\d+", source):
            out.append(f"{chart}: a source cites no file at a tag and line: {source[:90]}")
            continue
        for tag in tags:
            if _version_of(tag) == version:
                continue
            nearest = "nearest stored tag" in source and versions.minor(_version_of(tag)) == versions.minor(version)
            if not nearest:
                out.append(f"{chart} {rec['version']}: a source cites {tag}, not the pinned version's tag: {source[:90]}")
    return out


def test_every_source_cites_the_pinned_tag_or_a_nearest_stored_one_it_names() -> None:
    for chart, rec in record().items():
        problems = citation_problems(chart, rec)
        if chart in NOT_YET_AT_TAGS:
            assert problems, f"{chart} cites its tags now: take it out of NOT_YET_AT_TAGS"
        else:
            assert problems == [], "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "ok"),
    [
        ("repo values.yaml@v1.21.2:L4 (x)", True),
        ("repo values.yaml @v1.21.2:L4, L9", True),
        ("repo values.yaml @95d6fc4 (x)", False),  # a commit, not a tag
        ("repo values.yaml@v1.20.3:L4 (x)", False),  # another version's tag
        ("repo values.yaml@v1.21.1:L4 (x)", False),  # an older tag, not named as the nearest stored one
        ("repo values.yaml@v1.21.1:L4 (v1.21.1 is the nearest stored tag)", True),
        ("repo values.yaml@v1.20.3:L4 (v1.20.3 is the nearest stored tag)", False),  # another minor
        ("repo values.yaml@v1.21.2 (no line)", False),
        ("a docs page, no file", False),
    ],
)
def test_the_citation_check_itself(source, ok) -> None:
    rec = {"version": "v1.21.2", "sources": [source], "paths": ["x"]}
    assert (citation_problems("c", rec) == []) is ok
    assert _version_of("prometheus-29.25.0") == "29.25.0" and _version_of("1.31.0-rc.0") == "1.31.0-rc.0"


def test_a_pin_moved_past_its_recorded_tags_fails_the_citation_check() -> None:
    rec = copy.deepcopy(record()["prometheus"])
    assert citation_problems("prometheus", rec) == []
    rec["version"] = "29.27.0"
    assert citation_problems("prometheus", rec)
