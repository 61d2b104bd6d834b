"""Least privilege: what the charts would grant or mount that the stack does not need is left out.

Each fact comes from tests/data/upstream_charts.yaml (read in the charts at their pinned tags), never
from components/, and each check is shown able to fail on a broken input.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from combinations import OFFERED, render

TABLE = yaml.safe_load((Path(__file__).parent / "data" / "upstream_charts.yaml").read_text())
RELEASE = "kubernetes:helm.sh/v3:Release"


def _releases(combo) -> dict[str, dict]:
    return {r.inputs["chart"]: r.inputs for r in render(combo).by_type(RELEASE)}


def _go_to_string(value) -> str:
    """Sprig's ``toString``: a YAML boolean false is "false", as the string "false" is."""
    return str(value).lower() if isinstance(value, bool) else str(value)


# --- istiod: no Gateway API deployment controller RBAC ----------------------------------------


def rendered_conditional_roles(istiod_values: dict, table: dict = TABLE) -> list[str]:
    """The istiod chart's conditional ClusterRoles these values leave in."""
    env = {**(istiod_values.get("env") or {}), **((istiod_values.get("pilot") or {}).get("env") or {})}
    return [
        role["name"]
        for role in table["istiod"]["conditionalClusterRoles"]
        if _go_to_string(env.get(role["env"])) != role["omitted_when"]
    ]


@pytest.mark.parametrize("combo", OFFERED[:: max(1, len(OFFERED) // 8)], ids=lambda c: c.id)
def test_istiod_gets_no_gateway_deployment_controller_role(combo) -> None:
    assert rendered_conditional_roles(_releases(combo)["istiod"]["values"]) == []


def test_an_istiod_with_the_deployment_controller_on_would_get_the_role() -> None:
    values = copy.deepcopy(_releases(OFFERED[0])["istiod"]["values"])
    del values["pilot"]["env"]["PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER"]
    assert rendered_conditional_roles(values) == ["istiod-gateway-controller-istio-system"]
    values["pilot"]["env"]["PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER"] = "False"
    assert rendered_conditional_roles(values) == ["istiod-gateway-controller-istio-system"]
    values["pilot"]["env"]["PILOT_ENABLE_GATEWAY_API_DEPLOYMENT_CONTROLLER"] = False
    assert rendered_conditional_roles(values) == []
