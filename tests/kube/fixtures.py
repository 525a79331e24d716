"""Pytest plugin with a real Kubernetes control plane for the session and a namespace per test.

Register it once in the root conftest (`pytest_plugins = ["tests.kube.fixtures"]`); the
operator and chart tests then ask for `kube_control_plane`, `kube_api` and `kube_namespace`.
"""

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from ticketing_dev.controlplane import ControlPlane
from ticketing_dev.ports import free_port
from ticketing_dev.servers import MissingPrerequisite

from tests.prerequisites import missing


@pytest.fixture(scope="session")
def kube_control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd and kube-apiserver for the whole session; `.kubeconfig` is the admin kubeconfig,
    `.env()` the environment for kubectl and helm, `.helm` the helm binary."""
    run_dir: Path = tmp_path_factory.mktemp("controlplane")
    try:
        plane = ControlPlane(run_dir, etcd_port=free_port(), apiserver_port=free_port())
    except MissingPrerequisite as exc:
        missing(str(exc))
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube_api(kube_control_plane: ControlPlane) -> Iterator[client.ApiClient]:
    """A `kubernetes` client logged in as the admin (group system:masters)."""
    api = config.new_client_from_config(config_file=str(kube_control_plane.kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def kube_namespace(kube_api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, deleted afterwards.

    No controller-manager runs, so a deleted namespace stays Terminating with its objects;
    the cluster lives for one session, so that only costs a little etcd space.
    """
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")
    name = f"{stem[:50].rstrip('-')}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube_api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


def service_account_kubeconfig(
    plane: ControlPlane, kube_api: client.ApiClient, namespace: str, account: str, path: Path
) -> Path:
    """A kubeconfig at `path` that logs in as `account` (an hour's token) and as nothing else."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token = (
        client.CoreV1Api(kube_api)
        .create_namespaced_service_account_token(account, namespace, request)
        .status.token
    )
    cluster = {"server": plane.server, "certificate-authority": str(plane.certs.ca_cert)}
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": cluster}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": account, "context": {"cluster": "local", "user": account}}],
                "current-context": account,
            }
        )
    )
    return path
