"""The operator's way into the cluster: one client configuration for kopf's login and for the
Deployment scale calls, from a kubeconfig path, the in-cluster service account, or the default."""

import asyncio

import kopf
from kubernetes import client, config
from kubernetes.client import ApiException


class ScaleFailed(RuntimeError):
    """The API server refused or failed a scale call; `retriable` says whether to try again."""

    def __init__(self, message: str, *, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable


def load_configuration(kubeconfig: str) -> client.Configuration:
    configuration = client.Configuration()
    # The client's config loaders carry no type hints.
    if kubeconfig:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
        return configuration
    try:
        config.load_incluster_config(  # type: ignore[no-untyped-call]
            client_configuration=configuration
        )
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


def connection_info(configuration: client.Configuration) -> kopf.ConnectionInfo:
    """kopf's credentials from the client's configuration (as kopf's own piggybacking does)."""
    header = configuration.get_api_key_with_prefix(
        "BearerToken"
    ) or configuration.get_api_key_with_prefix("authorization")
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


class Deployments:
    """Reads and sets a Deployment's replicas through its scale subresource."""

    def __init__(self, api: client.ApiClient) -> None:
        self._apps = client.AppsV1Api(api)

    async def replicas(self, namespace: str, name: str) -> int | None:
        """The Deployment's desired replicas, or None when it does not exist."""
        try:
            scale = await asyncio.to_thread(
                self._apps.read_namespaced_deployment_scale, name, namespace
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _failed("reading", namespace, name, exc) from exc
        return int(scale.spec.replicas or 0) if scale.spec else 0

    async def scale(self, namespace: str, name: str, replicas: int) -> None:
        try:
            await asyncio.to_thread(
                self._apps.patch_namespaced_deployment_scale,
                name,
                namespace,
                {"spec": {"replicas": replicas}},
            )
        except ApiException as exc:
            raise _failed("scaling", namespace, name, exc) from exc


def _failed(doing: str, namespace: str, name: str, exc: ApiException) -> ScaleFailed:
    retriable = exc.status is None or exc.status >= 500 or exc.status == 429
    return ScaleFailed(
        f"{doing} deployment {namespace}/{name} failed: {exc.status} {exc.reason}",
        retriable=retriable,
    )
