"""helm install into a real kube-apiserver: the API accepts every object the chart renders.

No scheduler or kubelet runs, so no pod starts; what is checked is that the server validates,
stores and lists each object, and that an upgrade keeps generated secrets and scaled replicas.
"""

import json
from collections.abc import Iterator

import pytest
from kubernetes import client
from ticketing_dev.controlplane import ControlPlane

from tests.charts.chart import CHART, VALUES_SETS

pytestmark = pytest.mark.kube

HTTP_SERVICES = {"event", "payment", "queue", "reservation", "seat", "user", "gateway"}


def install(plane: ControlPlane, namespace: str, *extra: str, verb: str = "install") -> None:
    plane.helm(verb, "ticketing", str(CHART), "--namespace", namespace, "--wait=false", *extra)


def component_names(items: list[client.V1ObjectMeta]) -> set[str]:
    return {i.metadata.labels["app.kubernetes.io/component"] for i in items}


@pytest.fixture(scope="module")
def monitoring_crds(kube_api: client.ApiClient) -> Iterator[None]:
    """Minimal ServiceMonitor and PodMonitor CRDs, as the Prometheus Operator would bring."""
    extensions = client.ApiextensionsV1Api(kube_api)
    names = []
    for kind, plural in (("ServiceMonitor", "servicemonitors"), ("PodMonitor", "podmonitors")):
        name = f"{plural}.monitoring.coreos.com"
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        extensions.create_custom_resource_definition(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": name},
                "spec": {
                    "group": "monitoring.coreos.com",
                    "scope": "Namespaced",
                    "names": {"plural": plural, "singular": kind.lower(), "kind": kind},
                    "versions": [
                        {"name": "v1", "served": True, "storage": True,
                         "schema": {"openAPIV3Schema": schema}}
                    ],
                },
            }
        )  # fmt: skip
        names.append(name)
    yield
    for name in names:
        extensions.delete_custom_resource_definition(name)


def test_install_with_defaults_creates_every_object(
    kube_control_plane: ControlPlane, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    install(kube_control_plane, kube_namespace)

    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    deployments = apps.list_namespaced_deployment(kube_namespace).items
    assert component_names(deployments) == HTTP_SERVICES | {
        "retry-worker", "retry-consumer", "operator"
    }  # fmt: skip
    services = core.list_namespaced_service(kube_namespace).items
    assert component_names(services) == HTTP_SERVICES | {"redis", "mariadb", "kafka"}
    statefulsets = apps.list_namespaced_stateful_set(kube_namespace).items
    assert component_names(statefulsets) == {"redis", "mariadb", "kafka"}
    hpas = client.AutoscalingV2Api(kube_api).list_namespaced_horizontal_pod_autoscaler(
        kube_namespace
    )
    assert component_names(hpas.items) == HTTP_SERVICES
    pdbs = client.PolicyV1Api(kube_api).list_namespaced_pod_disruption_budget(kube_namespace)
    assert component_names(pdbs.items) == HTTP_SERVICES
    jobs = client.BatchV1Api(kube_api).list_namespaced_job(kube_namespace).items
    assert [j.metadata.name for j in jobs] == ["ticketing-migrate-r1"]
    secret = core.read_namespaced_secret("ticketing", kube_namespace)
    assert {"login-signing-keys", "admission-signing-keys", "database-url"} <= set(secret.data)
    extensions = client.ApiextensionsV1Api(kube_api)
    assert extensions.read_custom_resource_definition("ticketevents.ticketing.dev")
    releases = json.loads(kube_control_plane.helm("list", "-n", kube_namespace, "-o", "json"))
    assert [(r["name"], r["status"]) for r in releases] == [("ticketing", "deployed")]


def test_install_with_everything_in_cluster_creates_policies_ingress_and_monitors(
    kube_control_plane: ControlPlane,
    kube_api: client.ApiClient,
    kube_namespace: str,
    monitoring_crds: None,
) -> None:
    (values,) = VALUES_SETS["in-cluster-everything"]

    install(kube_control_plane, kube_namespace, "-f", str(values))

    policies = client.NetworkingV1Api(kube_api).list_namespaced_network_policy(kube_namespace)
    assert component_names(policies.items) == HTTP_SERVICES | {"redis", "mariadb", "kafka"}
    ingresses = client.NetworkingV1Api(kube_api).list_namespaced_ingress(kube_namespace).items
    assert [i.metadata.name for i in ingresses] == ["ticketing"]
    objects = client.CustomObjectsApi(kube_api)
    for plural in ("servicemonitors", "podmonitors"):
        listed = objects.list_namespaced_custom_object(
            "monitoring.coreos.com", "v1", kube_namespace, plural
        )
        assert len(listed["items"]) == 1


def test_install_with_external_backing_servers_creates_no_statefulset(
    kube_control_plane: ControlPlane, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    (values,) = VALUES_SETS["external-backing"]

    install(kube_control_plane, kube_namespace, "-f", str(values))

    assert client.AppsV1Api(kube_api).list_namespaced_stateful_set(kube_namespace).items == []
    deployments = client.AppsV1Api(kube_api).list_namespaced_deployment(kube_namespace).items
    assert len(deployments) == 10


def test_upgrade_keeps_generated_secrets_and_the_operators_replica_count(
    kube_control_plane: ControlPlane, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    install(kube_control_plane, kube_namespace)
    core = client.CoreV1Api(kube_api)
    apps = client.AppsV1Api(kube_api)
    before = core.read_namespaced_secret("ticketing", kube_namespace).data
    # What the operator does when the retry backlog grows.
    apps.patch_namespaced_deployment_scale(
        "ticketing-retry-worker", kube_namespace, {"spec": {"replicas": 5}}
    )

    # A seed set later derives only what the cluster does not hold yet.
    seed = "secrets.seed=a-seed-of-at-least-thirty-two-characters"
    install(kube_control_plane, kube_namespace, "--set", f"logLevel=DEBUG,{seed}", verb="upgrade")

    assert core.read_namespaced_secret("ticketing", kube_namespace).data == before
    worker = apps.read_namespaced_deployment("ticketing-retry-worker", kube_namespace)
    assert worker.spec.replicas == 5
    jobs = client.BatchV1Api(kube_api).list_namespaced_job(kube_namespace).items
    assert [j.metadata.name for j in jobs] == ["ticketing-migrate-r2"]


def operator_may(
    kube_api: client.ApiClient,
    release_namespace: str,
    verb: str,
    resource: str,
    group: str = "",
    namespace: str | None = None,
    subresource: str = "",
) -> bool:
    review = client.AuthorizationV1Api(kube_api).create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=f"system:serviceaccount:{release_namespace}:ticketing-operator",
                resource_attributes=client.V1ResourceAttributes(
                    namespace=namespace, verb=verb, group=group, resource=resource,
                    subresource=subresource,
                ),
            )
        )
    )  # fmt: skip
    return bool(review.status.allowed)


@pytest.fixture
def other_namespace(kube_api: client.ApiClient, kube_namespace: str) -> Iterator[str]:
    name = f"{kube_namespace[:50]}-other"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


def test_operator_may_run_sales_in_the_release_namespace_and_nowhere_else(
    kube_control_plane: ControlPlane,
    kube_api: client.ApiClient,
    kube_namespace: str,
    other_namespace: str,
) -> None:
    install(kube_control_plane, kube_namespace)

    def may(
        namespace: str | None, verb: str, resource: str, group: str = "", sub: str = ""
    ) -> bool:
        return operator_may(kube_api, kube_namespace, verb, resource, group, namespace, sub)

    for namespace, expected in ((kube_namespace, True), (other_namespace, False)):
        assert may(namespace, "watch", "ticketevents", "ticketing.dev") is expected, namespace
        assert may(namespace, "patch", "ticketevents", "ticketing.dev", "status") is expected
        assert may(namespace, "patch", "deployments", "apps", "scale") is expected
        assert may(namespace, "create", "events") is expected
    # Cluster-scoped reads kopf needs to discover resources and namespaces.
    assert may(None, "watch", "customresourcedefinitions", "apiextensions.k8s.io")
    assert may(None, "list", "namespaces")
    # Never more than that, anywhere.
    assert not may(None, "watch", "ticketevents", "ticketing.dev")
    assert not may(kube_namespace, "list", "secrets")
    assert not may(kube_namespace, "patch", "deployments", "apps")
    assert not may(kube_namespace, "delete", "ticketevents", "ticketing.dev")


def test_operator_watching_two_namespaces_may_run_sales_in_both_only(
    kube_control_plane: ControlPlane,
    kube_api: client.ApiClient,
    kube_namespace: str,
    other_namespace: str,
) -> None:
    install(kube_control_plane, kube_namespace, "--set",
            f"operator.watchNamespaces={{{kube_namespace},{other_namespace}}}")  # fmt: skip

    for namespace in (kube_namespace, other_namespace):
        assert operator_may(kube_api, kube_namespace, "watch", "ticketevents", "ticketing.dev",
                            namespace)  # fmt: skip
    assert not operator_may(kube_api, kube_namespace, "watch", "ticketevents", "ticketing.dev",
                            "default")  # fmt: skip
