"""The values Helm gets from a recorded ``kubernetes:helm.sh/v3:Release``, and what a chart makes of them.

- ``release_values``: what the Kubernetes provider hands Helm. Each ``valueYamlFiles`` asset is read
  as YAML and merged in order, then ``values`` over them (pulumi/pulumi-kubernetes
  provider/pkg/provider/helm_release.go@v4.32.0:L295-L325, decodeRelease), with Helm's ``MergeMaps``:
  a map merges key by key, anything else replaces (provider/pkg/helm/upstream.go@v4.32.0:L21-L38).
  A ``null`` reaches Helm from provider 4.30.0 on (CHANGELOG.md@v4.32.0, 4.30.0: "Stop stripping null
  values", #2997). For Python the maintainers name ``valueYamlFiles`` as the way to send one (the same
  change, commit 7e10bf37: "Go/C#/Python users can use valueYamlFiles"; they say those SDKs strip an
  inline null), and the stack does so. An inline ``None`` is kept here as well: the Python SDK
  3.272.0 puts it into its request (the mock engine records it) and the engine filters no null out
  of a registration (pulumi/pulumi pkg/resource/deploy/source_eval.go@v3.276.0, RegisterResource:
  ``FilterProperties`` without ``SkipNulls``).
- ``coalesce``: Helm's coalescing of those values over the chart's defaults (helm.sh/helm/v3
  pkg/chartutil/coalesce.go@v3.22.0:L222-L251 and L278-L330): a map merges key by key, anything else
  replaces the default, and a ``null`` deletes the default.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from offline.thirdparty.pulumi_sdk import ASSET_SIG, SIG_KEY


def merge_maps(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Helm's ``MergeMaps``: ``b`` over ``a``; maps merge key by key, anything else (``null`` too) replaces."""
    out = dict(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_maps(out[k], v)
        else:
            out[k] = v
    return out


def _asset_text(asset: Any) -> str:
    if isinstance(asset, dict) and asset.get(SIG_KEY) == ASSET_SIG and isinstance(asset.get("text"), str):
        return asset["text"]
    raise ValueError(f"valueYamlFiles holds {asset!r}: only text assets (pulumi.StringAsset) can be read offline")


def release_values(inputs: dict[str, Any]) -> dict[str, Any]:
    """The values a Release's inputs give Helm: its ``valueYamlFiles`` in order, then ``values``."""
    out: dict[str, Any] = {}
    for asset in inputs.get("valueYamlFiles") or []:
        out = merge_maps(out, yaml.safe_load(_asset_text(asset)) or {})
    return merge_maps(out, inputs.get("values") or {})


def coalesce(values: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of ``values`` over a chart's ``defaults``: a ``null`` deletes the default."""
    out = copy.deepcopy(values)
    for key, default in defaults.items():
        if key not in out:
            out[key] = copy.deepcopy(default)
        elif out[key] is None and default is not None:
            del out[key]
        elif isinstance(out[key], dict) and isinstance(default, dict):
            out[key] = coalesce(out[key], default)
    return out
