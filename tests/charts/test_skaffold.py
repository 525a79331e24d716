"""skaffold.yaml is valid for the apiVersion it declares, by skaffold's own JSON schema."""

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.charts.chart import ROOT

# Skaffold's own schema for the apiVersion skaffold.yaml declares, vendored with its licence
# notice (schemas/skaffold/NOTICE).
SCHEMAS = Path(__file__).parent / "schemas" / "skaffold"


def load_schema(config: dict[str, Any]) -> dict[str, Any]:
    version = config["apiVersion"].removeprefix("skaffold/")
    path = SCHEMAS / f"{version}.json"
    assert path.exists(), f"no schema for {config['apiVersion']} in {SCHEMAS}"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    return loaded


def test_skaffold_config_validates_against_its_schema() -> None:
    skaffold = config()

    jsonschema.validate(skaffold, load_schema(skaffold))

    assert skaffold["apiVersion"] == "skaffold/v4beta13"


def test_skaffold_schema_refuses_a_misspelt_field() -> None:
    skaffold = config()
    skaffold["build"]["local"]["pushImage"] = False

    with pytest.raises(jsonschema.ValidationError, match="'pushImage' was unexpected"):
        jsonschema.validate(skaffold, load_schema(skaffold))


def test_skaffold_builds_locally_for_kind_and_forwards_the_web_page() -> None:
    skaffold = config()

    kind = next(p for p in skaffold["profiles"] if p["name"] == "kind")
    assert kind["build"]["local"]["push"] is False
    assert skaffold["build"]["local"]["push"] is False
    release = skaffold["deploy"]["helm"]["releases"][0]
    assert (ROOT / release["chartPath"] / "Chart.yaml").exists()
    # The gateway serves the page and every API on one origin.
    assert {"resourceName": "ticketing-gateway", "port": 80}.items() <= (
        skaffold["portForward"][0].items()
    )


def test_kind_cluster_maps_ingress_ports_to_the_host() -> None:
    cluster = yaml.safe_load((ROOT / "manifests" / "kind-cluster.yaml").read_text())

    node = cluster["nodes"][0]
    assert node["labels"]["ingress-ready"] == "true"
    assert {m["containerPort"]: m["hostPort"] for m in node["extraPortMappings"]} == {
        80: 80,
        443: 443,
    }
