"""The operator runs with nothing but manifests/rbac-operator.yaml: as that service account,
a sale is configured, its workers scaled and its finalizer released; anything else is denied."""

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
import yaml
from kubernetes import client
from ticketing.common.redis_keys import RetryKeys
from ticketing.common.sale_config import read_sale_config
from ticketing_dev.controlplane import ControlPlane
from ticketing_operator.settings import OperatorSettings

from tests.kube.fixtures import service_account_kubeconfig
from tests.operator.conftest import MANIFESTS, OperatorThread
from tests.operator.factories import (
    condition,
    create,
    eventually,
    make_deployment,
    make_ticketevent,
    read,
)

pytestmark = [pytest.mark.kube, pytest.mark.slow]
ACCOUNT = "ticketing-operator"


def install_rbac(plane: ControlPlane, namespace: str, directory: Path) -> None:
    """The manifest as shipped, with its service account moved into the test's namespace."""
    docs: list[dict[str, Any]] = list(
        yaml.safe_load_all((MANIFESTS / "rbac-operator.yaml").read_text())
    )
    cluster_name = f"{ACCOUNT}-{namespace}"
    for doc in docs:
        if doc["kind"] in ("ServiceAccount", "Role", "RoleBinding"):
            doc["metadata"]["namespace"] = namespace
        if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
            doc["metadata"]["name"] = cluster_name
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = cluster_name
        if doc["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            doc["subjects"][0]["namespace"] = namespace
    path = directory / "rbac.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    plane.kubectl("apply", "-f", str(path))


def allowed(kube_api: client.ApiClient, namespace: str, **attributes: str) -> bool:
    review = client.AuthorizationV1Api(kube_api).create_subject_access_review(
        client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(
                user=f"system:serviceaccount:{namespace}:{ACCOUNT}",
                resource_attributes=client.V1ResourceAttributes(namespace=namespace, **attributes),
            )
        )
    )
    return bool(review.status.allowed)


@pytest.fixture
def rbac_kubeconfig(
    kube_control_plane: ControlPlane,
    kube_api: client.ApiClient,
    kube_namespace: str,
    tmp_path: Path,
) -> Path:
    install_rbac(kube_control_plane, kube_namespace, tmp_path)
    return service_account_kubeconfig(
        kube_control_plane, kube_api, kube_namespace, ACCOUNT, tmp_path / "operator.kubeconfig"
    )


@pytest.mark.parametrize(
    "attributes",
    [
        {"verb": "list", "resource": "secrets"},
        {"verb": "patch", "resource": "deployments", "group": "apps"},
        {"verb": "delete", "resource": "ticketevents", "group": "ticketing.dev"},
        {"verb": "create", "resource": "pods"},
    ],
    ids=["read-secrets", "patch-deployment-template", "delete-sales", "create-pods"],
)
def test_operator_account_is_denied_what_it_does_not_need(
    rbac_kubeconfig: Path,
    kube_api: client.ApiClient,
    kube_namespace: str,
    attributes: dict[str, str],
) -> None:
    assert not allowed(kube_api, kube_namespace, **attributes)


async def test_operator_runs_a_sale_with_only_its_rbac(
    rbac_kubeconfig: Path,
    operator_settings: OperatorSettings,
    kube_api: client.ApiClient,
    kube_namespace: str,
    objects: client.CustomObjectsApi,
    redis_client: aioredis.Redis,
    ticketevent_crd: str,
) -> None:
    prefix = operator_settings.redis_key_prefix
    apps = client.AppsV1Api(kube_api)
    apps.create_namespaced_deployment(kube_namespace, make_deployment("workers", replicas=1))
    retry = RetryKeys(prefix)
    await redis_client.sadd(retry.topics, "reservation.paid")
    await redis_client.zadd(retry.delayed("reservation.paid"), {f"m{i}": i for i in range(30)})
    operator = OperatorThread(
        operator_settings.model_copy(update={"operator_kubeconfig": str(rbac_kubeconfig)}),
        kube_namespace,
    )
    operator.start()
    try:
        policy = {"deployment": "workers", "backlogPerReplica": 10}
        create(objects, kube_namespace, make_ticketevent("least-privilege", retryWorkers=policy))

        async def state() -> dict[str, Any]:
            return read(objects, kube_namespace, "least-privilege")

        await eventually(
            state,
            lambda r: (
                condition(r, "Ready").get("status") == "True"
                and r["status"]["retryWorkers"]["replicas"] == 3
            ),
            what="a configured sale with 3 workers",
        )
        assert apps.read_namespaced_deployment_scale("workers", kube_namespace).spec.replicas == 3

        objects.delete_namespaced_custom_object(
            "ticketing.dev", "v1alpha1", kube_namespace, "ticketevents", "least-privilege"
        )

        async def config() -> object:
            return await read_sale_config(redis_client, prefix, "least-privilege")

        await eventually(config, lambda c: c is None, what="the configuration removed")
    finally:
        operator.stop()
