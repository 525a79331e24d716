"""The local control plane is a real Kubernetes API: schemas, subresources, RBAC, kubectl, helm."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from ticketing_dev.controlplane import ControlPlane
from ticketing_dev.ports import free_port

pytestmark = pytest.mark.kube

GROUP = "kubetest.ticketing.local"
PLURAL = "widgets"


def make_widget(name: str, seats: object = 10) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"seats": seats, "venue": "hall-a"},
    }


def make_deployment(name: str, replicas: int = 1) -> client.V1Deployment:
    labels = {"app.kubernetes.io/name": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx")]),
            ),
        ),
    )


@pytest.fixture(scope="module")
def widget_crd(kube_api: client.ApiClient) -> Iterator[str]:
    """A namespaced CRD whose schema requires an integer `spec.seats` of at least 1."""
    extensions = client.ApiextensionsV1Api(kube_api)
    name = f"{PLURAL}.{GROUP}"
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["seats", "venue"],
                "properties": {
                    "seats": {"type": "integer", "minimum": 1},
                    "venue": {"type": "string"},
                },
            }
        },
    }
    extensions.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": name},
            "spec": {
                "group": GROUP,
                "scope": "Namespaced",
                "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget"},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": schema},
                    }
                ],
            },
        }
    )
    # A CRD is served only once the API server reports it Established.
    stream = watch.Watch().stream(
        extensions.list_custom_resource_definition,
        field_selector=f"metadata.name={name}",
        timeout_seconds=30,
    )
    for event in stream:
        conditions = event["object"].status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            break
    else:
        pytest.fail(f"CRD {name} was not Established within 30s")
    yield name
    extensions.delete_custom_resource_definition(name)


def test_version_reports_the_stamped_release(kube_control_plane: ControlPlane) -> None:
    version = kube_control_plane.version()

    assert version["gitVersion"] == "v1.34.4"
    assert (version["major"], version["minor"]) == ("1", "34")


def test_kubectl_client_matches_the_server(kube_control_plane: ControlPlane) -> None:
    versions = json.loads(kube_control_plane.kubectl("version", "--output=json"))

    assert versions["clientVersion"]["gitVersion"] == versions["serverVersion"]["gitVersion"]


def test_second_control_plane_runs_beside_the_first_and_stops(
    kube_control_plane: ControlPlane, tmp_path: Path
) -> None:
    second = ControlPlane(tmp_path, etcd_port=free_port(), apiserver_port=free_port())

    with second:
        assert second.version()["gitVersion"] == "v1.34.4"
        assert second.kubeconfig != kube_control_plane.kubeconfig

    assert not second.apiserver.running()
    assert not second.etcd.running()
    assert kube_control_plane.get("/readyz") == b"ok"


def test_create_refuses_custom_object_that_violates_schema(
    kube_api: client.ApiClient, kube_namespace: str, widget_crd: str
) -> None:
    objects = client.CustomObjectsApi(kube_api)

    with pytest.raises(ApiException) as refused:
        objects.create_namespaced_custom_object(
            GROUP, "v1", kube_namespace, PLURAL, make_widget("too-many", seats="lots")
        )

    assert refused.value.status == 422
    message = json.loads(refused.value.body)["message"]
    assert "spec.seats" in message
    assert 'must be of type integer: "string"' in message


def test_create_refuses_custom_object_below_schema_minimum(
    kube_api: client.ApiClient, kube_namespace: str, widget_crd: str
) -> None:
    objects = client.CustomObjectsApi(kube_api)

    with pytest.raises(ApiException) as refused:
        objects.create_namespaced_custom_object(
            GROUP, "v1", kube_namespace, PLURAL, make_widget("empty", seats=0)
        )

    assert refused.value.status == 422
    assert "spec.seats" in json.loads(refused.value.body)["message"]


def test_kubectl_get_lists_valid_custom_object(
    kube_control_plane: ControlPlane,
    kube_api: client.ApiClient,
    kube_namespace: str,
    widget_crd: str,
) -> None:
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        GROUP, "v1", kube_namespace, PLURAL, make_widget("main-hall")
    )

    listed = kube_control_plane.kubectl("get", PLURAL, "-n", kube_namespace, "-o", "json")

    items = json.loads(listed)["items"]
    assert [(i["metadata"]["name"], i["spec"]["seats"]) for i in items] == [("main-hall", 10)]


def test_deployment_scale_subresource_patch_is_read_back(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, make_deployment("web", replicas=1))

    apps.patch_namespaced_deployment_scale("web", kube_namespace, {"spec": {"replicas": 3}})

    scale = apps.read_namespaced_deployment_scale("web", kube_namespace)
    assert scale.spec.replicas == 3
    assert apps.read_namespaced_deployment("web", kube_namespace).spec.replicas == 3


def test_pod_is_accepted_without_a_default_service_account(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    # No controller-manager creates the namespace's "default" ServiceAccount, so the
    # ServiceAccount admission plugin is off; without that this create is refused.
    core = client.CoreV1Api(kube_api)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="lonely"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx")]),
    )

    created = core.create_namespaced_pod(kube_namespace, pod)

    assert created.status.phase == "Pending"  # nothing schedules it


def test_rbac_denies_a_service_account_without_bindings(
    kube_api: client.ApiClient, kube_namespace: str
) -> None:
    review = client.AuthorizationV1Api(kube_api).create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=f"system:serviceaccount:{kube_namespace}:nobody",
                resource_attributes=client.V1ResourceAttributes(
                    namespace=kube_namespace, verb="list", resource="secrets"
                ),
            )
        )
    )

    assert review.status.allowed is False


def test_helm_install_creates_the_chart_objects(
    kube_control_plane: ControlPlane,
    kube_api: client.ApiClient,
    kube_namespace: str,
    testchart: Path,
) -> None:
    kube_control_plane.helm(
        "install", "demo", str(testchart), "--namespace", kube_namespace,
        "--set", "greeting=hi", "--wait=false",
    )  # fmt: skip

    core = client.CoreV1Api(kube_api)
    assert core.read_namespaced_config_map("demo-testchart", kube_namespace).data == {
        "greeting": "hi"
    }
    assert core.read_namespaced_service("demo-testchart", kube_namespace).spec.ports[0].port == 80
    deployment = client.AppsV1Api(kube_api).read_namespaced_deployment(
        "demo-testchart", kube_namespace
    )
    assert deployment.spec.replicas == 2
    assert deployment.spec.template.spec.containers[0].image == "nginx:1.27.0"
    releases = json.loads(
        kube_control_plane.helm("list", "--namespace", kube_namespace, "--output", "json")
    )
    assert [(r["name"], r["status"]) for r in releases] == [("demo", "deployed")]


KOPF_OPERATOR = """
import kopf

@kopf.on.create("configmaps", labels={"kubetest": "kopf"})
def created(patch, **_):
    patch.metadata.annotations["kubetest/seen-by"] = "kopf"
"""


def test_kopf_operator_logs_in_with_the_kubeconfig_and_handles_an_object(
    kube_control_plane: ControlPlane,
    kube_api: client.ApiClient,
    kube_namespace: str,
    tmp_path: Path,
) -> None:
    operator = tmp_path / "operator.py"
    operator.write_text(KOPF_OPERATOR)
    kopf = Path(sys.executable).parent / "kopf"
    process = subprocess.Popen(
        [str(kopf), "run", "--standalone", f"--namespace={kube_namespace}", str(operator)],
        env=kube_control_plane.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    core = client.CoreV1Api(kube_api)
    try:
        core.create_namespaced_config_map(
            kube_namespace,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="watched", labels={"kubetest": "kopf"})
            ),
        )
        deadline = time.monotonic() + 30
        annotations: dict[str, str] = {}
        while time.monotonic() < deadline and "kubetest/seen-by" not in annotations:
            time.sleep(0.5)
            metadata = core.read_namespaced_config_map("watched", kube_namespace).metadata
            annotations = metadata.annotations or {}
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)

    assert annotations.get("kubetest/seen-by") == "kopf", output[-2000:]
