"""Every image the stack itself declares, in any object of any option combination, is pinned by digest."""

from __future__ import annotations

import re
from typing import Any

import pytest
from combinations import OFFERED, render

_DIGEST = re.compile(r"@sha256:[a-f0-9]{64}$")
# A kind node in the kind config (a YAML string on the cluster command's stdin).
_KIND_NODE = re.compile(r"^\s*image:\s*(\S+)\s*$", re.M)


def images(value: Any) -> list[str]:
    """Every ``image`` field, at any depth, plus the node images of a kind config string."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "image" and isinstance(item, str):
                found.append(item)
            else:
                found += images(item)
    elif isinstance(value, list):
        for item in value:
            found += images(item)
    elif isinstance(value, str) and "kind: Cluster" in value:
        found += _KIND_NODE.findall(value)
    return found


def test_the_walk_finds_images_at_any_depth() -> None:
    spec = {"spec": {"template": {"spec": {"containers": [{"image": "a:1"}], "initContainers": [{"image": "b:2"}]}}}}
    assert images(spec) == ["a:1", "b:2"]
    assert images({"stdin": "kind: Cluster\nnodes:\n  - role: control-plane\n    image: kindest/node:v1\n"}) == [
        "kindest/node:v1"
    ]


@pytest.mark.parametrize("combo", OFFERED, ids=[c.id for c in OFFERED])
def test_every_declared_image_is_pinned_by_digest(combo) -> None:
    declared = [i for r in render(combo).resources for i in images(r.inputs)]
    unpinned = sorted({i for i in declared if not _DIGEST.search(i)})
    assert unpinned == [], f"{combo.id}: images without @sha256 digest: {unpinned}"
