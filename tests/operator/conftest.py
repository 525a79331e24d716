"""The TicketEvent CRD installed once per session, and the operator run in-process per test:
kopf in its own thread and event loop, limited to the test's namespace, pointed at the test's
kubeconfig and the test's Redis prefix."""

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import kopf
import pytest
import ticketing_operator.handlers  # noqa: F401  (importing it registers the handlers with kopf)
from kubernetes import client
from ticketing.common.settings import CommonSettings
from ticketing_dev.controlplane import ControlPlane
from ticketing_operator.settings import OperatorSettings

from tests.core.conftest import migrated_database, serve  # noqa: F401  (the services' fixtures)

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
CRD_NAME = "ticketevents.ticketing.dev"


class OperatorThread:
    """One operator instance; `stop()` is the operator's process ending."""

    def __init__(
        self, settings: OperatorSettings, namespace: str, *, priority: int | None = None
    ) -> None:
        self._settings = settings
        self._namespace = namespace
        self._priority = priority
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.thread_name = f"kopf-operator-{priority}" if priority is not None else "kopf-operator"
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    namespaces=[self._namespace],
                    # Only the peering test turns standalone off (in the settings).
                    priority=self._priority,
                    memo=kopf.Memo(operator_settings=self._settings),
                    stop_flag=self._stop,
                    ready_flag=self._ready,
                )
            )
        except BaseException as exc:  # noqa: BLE001  (stop() re-raises it in the test)
            self.error = exc

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(30):
            self.stop()
            pytest.fail("the operator did not finish its startup within 30s")

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._stop.set()
        self._thread.join(30)
        if self._thread.is_alive():
            pytest.fail("the operator did not stop within 30s")
        if self.error is not None:
            raise self.error


StartOperator = Callable[[], OperatorThread]


def install_crds(plane: ControlPlane, manifest: str) -> None:
    plane.kubectl("apply", "-f", str(MANIFESTS / manifest))
    plane.kubectl(
        "wait", "--for=condition=Established", "-f", str(MANIFESTS / manifest), "--timeout=30s"
    )


@pytest.fixture(scope="session")
def ticketevent_crd(kube_control_plane: ControlPlane) -> str:
    install_crds(kube_control_plane, "crd-ticketevent.yaml")
    return CRD_NAME


@pytest.fixture
def operator_settings(
    settings: CommonSettings, kube_control_plane: ControlPlane
) -> OperatorSettings:
    return OperatorSettings(
        **settings.model_dump(),
        operator_kubeconfig=str(kube_control_plane.kubeconfig),
        operator_standalone=True,
        operator_close_grace_seconds=1.0,
    )


@pytest.fixture
def start_operator(
    operator_settings: OperatorSettings, kube_namespace: str, ticketevent_crd: str
) -> Iterator[StartOperator]:
    """Call it to start an operator on the test's namespace; every one started is stopped."""
    started: list[OperatorThread] = []

    def start() -> OperatorThread:
        operator = OperatorThread(operator_settings, kube_namespace)
        operator.start()
        started.append(operator)
        return operator

    yield start
    for operator in started:
        operator.stop()


@pytest.fixture
def objects(kube_api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)
