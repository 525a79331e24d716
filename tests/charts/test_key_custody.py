"""Who can read which credential, read from the rendered chart: a private signing key reaches its
signer's pods alone, the operator's token the operator's alone, and no pod can read the whole
Secret (envFrom, a volume) or any Secret through the API (RBAC)."""

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from ticketing.common.keys import private_keys

from tests.charts.chart import VALUES_SETS, Manifest, by_kind, render

# Secret key -> the only components whose pods may read it.
CUSTODY = {
    "login-signing-keys": {"user"},
    "admission-signing-keys": {"queue"},
    "operator-token": {"operator"},
}
POD_KINDS = ("Deployment", "StatefulSet", "Job")


def _pods(manifests: list[Manifest]) -> list[tuple[str, str, dict[str, Any]]]:
    """(object name, component, pod spec) of every workload."""
    return [
        (
            m["metadata"]["name"],
            m["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component", ""),
            m["spec"]["template"]["spec"],
        )
        for m in manifests
        if m["kind"] in POD_KINDS
    ]


def readable_secret_keys(pod: dict[str, Any], secret: str) -> set[str]:
    """The keys of `secret` a pod's containers can read; "*" when it can read all of them."""
    keys: set[str] = set()
    for container in pod.get("initContainers", []) + pod["containers"]:
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref and ref["name"] == secret:
                keys.add(ref["key"])
        for source in container.get("envFrom", []):
            if source.get("secretRef", {}).get("name") == secret:
                keys.add("*")
    for volume in pod.get("volumes", []):
        sources = [volume, *volume.get("projected", {}).get("sources", [])]
        for source in sources:
            mounted = source.get("secret", {})
            if mounted.get("secretName", mounted.get("name")) == secret:
                items = mounted.get("items")
                keys |= {item["key"] for item in items} if items else {"*"}
    return keys


def custody_breaches(manifests: list[Manifest], secret: str) -> list[str]:
    breaches = []
    for name, component, pod in _pods(manifests):
        readable = readable_secret_keys(pod, secret)
        for key, keepers in CUSTODY.items():
            if (key in readable or "*" in readable) and component not in keepers:
                breaches.append(f"{name} ({component or 'no component'}) can read {key}")
    return breaches


def secret_readers(manifests: list[Manifest]) -> list[str]:
    """Roles that grant reading Secrets through the API."""
    granting = []
    for role in manifests:
        if role["kind"] not in ("Role", "ClusterRole"):
            continue
        for rule in role.get("rules", []):
            resources, verbs = set(rule.get("resources", [])), set(rule.get("verbs", []))
            if resources & {"secrets", "*"} and verbs & {"get", "list", "watch", "*"}:
                granting.append(role["metadata"]["name"])
    return granting


@pytest.mark.parametrize("values", list(VALUES_SETS))
def test_only_a_signer_can_read_its_private_key_and_only_the_operator_its_token(
    helm_binary: Path, values: str
) -> None:
    manifests = render(helm_binary, VALUES_SETS[values])
    secret = "ticketing-app" if values == "external-backing" else "ticketing"

    assert custody_breaches(manifests, secret) == []
    assert secret_readers(manifests) == []
    # ...and each keeper does read its key, so the rule above is not met by nobody reading it.
    readers = {
        key: {c for _, c, pod in _pods(manifests) if key in readable_secret_keys(pod, secret)}
        for key in CUSTODY
    }
    assert readers == CUSTODY


def test_custody_check_sees_a_key_handed_to_every_pod_through_extra_env(
    helm_binary: Path,
) -> None:
    manifests = render(
        helm_binary,
        (),
        "extraEnv[0].name=TICKETING_LOGIN_SIGNING_KEYS",
        "extraEnv[0].valueFrom.secretKeyRef.name=ticketing",
        "extraEnv[0].valueFrom.secretKeyRef.key=login-signing-keys",
    )

    assert "ticketing-gateway (gateway) can read login-signing-keys" in custody_breaches(
        manifests, "ticketing"
    )


def test_generated_keys_are_ed25519_keys_and_the_services_hold_the_operator_token_digest(
    helm_binary: Path,
) -> None:
    data = by_kind(render(helm_binary), "Secret")["ticketing"]["data"]
    value = {key: base64.b64decode(encoded).decode() for key, encoded in data.items()}

    for kind in ("login", "admission"):
        assert len(private_keys(value[f"{kind}-signing-keys"])) == 1
    assert value["login-signing-keys"] != value["admission-signing-keys"]
    assert len(value["operator-token"]) >= 32
    assert (
        value["operator-token-sha256"]
        == hashlib.sha256(value["operator-token"].encode()).hexdigest()
    )
