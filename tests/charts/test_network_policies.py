"""With NetworkPolicies and the monitors on, Prometheus may connect to every pod and port the
ServiceMonitor and PodMonitor ask it to scrape: read from the rendered objects, with the
NetworkPolicy semantics of the Kubernetes API (a pod selected by any policy admits only what
one of their rules allows)."""

from pathlib import Path
from typing import Any

from tests.charts.chart import VALUES_SETS, Manifest, by_kind, render

# kube-prometheus-stack installed in namespace "monitoring": its Prometheus pods' labels.
PROMETHEUS_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
PROMETHEUS_POD = {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus"}


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a set of labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value, values = labels.get(expression["key"]), expression.get("values", [])
        operator = expression["operator"]
        if (operator == "In" and value not in values) or (operator == "NotIn" and value in values):
            return False
        if (operator == "Exists" and value is None) or (
            operator == "DoesNotExist" and value is not None
        ):
            return False
    return True


def admits_prometheus(policies: list[Manifest], pod: dict[str, str], port: dict[str, Any]) -> bool:
    selecting = [p for p in policies if matches(p["spec"]["podSelector"], pod)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            ports = [p["port"] for p in rule.get("ports", [])]
            if ports and port["name"] not in ports and port["containerPort"] not in ports:
                continue
            for peer in rule.get("from", [{}]):
                # A peer without namespaceSelector means the policy's own namespace only.
                if "namespaceSelector" not in peer:
                    continue
                if matches(peer["namespaceSelector"], PROMETHEUS_NAMESPACE) and matches(
                    peer.get("podSelector", {}), PROMETHEUS_POD
                ):
                    return True
    return False


def scraped(manifests: list[Manifest]) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    """(component, pod labels, container port) of every endpoint the monitors scrape."""
    services = by_kind(manifests, "Service").values()
    pods = [d["spec"]["template"] for d in by_kind(manifests, "Deployment").values()]
    found = []
    for monitor in by_kind(manifests, "ServiceMonitor").values():
        for service in services:
            if not matches(monitor["spec"]["selector"], service["metadata"]["labels"]):
                continue
            for endpoint in monitor["spec"]["endpoints"]:
                (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
                for pod in pods:
                    if all(pod["metadata"]["labels"].get(k) == v
                           for k, v in service["spec"]["selector"].items()):  # fmt: skip
                        (target,) = [p for p in pod["spec"]["containers"][0]["ports"]
                                     if p["name"] == port["targetPort"]]  # fmt: skip
                        found.append(
                            (service["metadata"]["name"], pod["metadata"]["labels"], target)
                        )
    for monitor in by_kind(manifests, "PodMonitor").values():
        for pod in pods:
            if matches(monitor["spec"]["selector"], pod["metadata"]["labels"]):
                for endpoint in monitor["spec"]["podMetricsEndpoints"]:
                    (target,) = [p for p in pod["spec"]["containers"][0]["ports"]
                                 if p["name"] == endpoint["port"]]  # fmt: skip
                    found.append((pod["metadata"]["labels"]["app.kubernetes.io/component"],
                                  pod["metadata"]["labels"], target))  # fmt: skip
    return found


def test_prometheus_may_scrape_everything_the_monitors_ask_for(helm_binary: Path) -> None:
    manifests = render(helm_binary, VALUES_SETS["in-cluster-everything"])
    policies = list(by_kind(manifests, "NetworkPolicy").values())

    endpoints = scraped(manifests)
    blocked = [name for name, pod, port in endpoints if not admits_prometheus(policies, pod, port)]

    assert len(endpoints) >= 8
    assert blocked == []


def test_prometheus_is_not_admitted_when_nothing_scrapes(helm_binary: Path) -> None:
    manifests = render(helm_binary, VALUES_SETS["in-cluster-everything"],
                       "serviceMonitor.enabled=false")  # fmt: skip
    policies = list(by_kind(manifests, "NetworkPolicy").values())

    for deployment in by_kind(manifests, "Deployment").values():
        pod = deployment["spec"]["template"]
        if "readinessProbe" in pod["spec"]["containers"][0]:
            port = pod["spec"]["containers"][0]["ports"][0]
            assert not admits_prometheus(policies, pod["metadata"]["labels"], port)
