"""The chart lints clean, renders under every documented values set, and renders what it promises."""

import base64
import json
import re
from pathlib import Path

import pytest
import yaml
from ticketing.common.settings import CommonSettings
from ticketing.common.topics import TopicFamily, TopicSpec
from ticketing.gateway.routes import COMPONENTS

from tests.charts.chart import (
    CHART,
    ROOT,
    VALUES_SETS,
    Manifest,
    by_kind,
    chart_values,
    helm,
    render,
)
from tests.charts.local_release import container_env

HTTP_SERVICES = ["event", "payment", "queue", "reservation", "seat", "user", "gateway"]
# The components whose consumer groups read the main (reservation.*) topics.
MAIN_TOPIC_CONSUMERS = ["reservation", "payment"]
# Each topic family -> its block under kafka.topics.
FAMILY_VALUES = {
    TopicFamily.MAIN: "main",
    TopicFamily.RETRY: "retry",
    TopicFamily.DEAD_LETTER: "deadLetter",
}


@pytest.mark.parametrize("values_set", list(VALUES_SETS))
def test_helm_lint_is_clean_for_values_set(helm_binary: Path, values_set: str) -> None:
    args = ["lint", "--strict", str(CHART)]
    for path in VALUES_SETS[values_set]:
        args += ["-f", str(path)]

    result = helm(helm_binary, *args)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


@pytest.mark.parametrize("values_set", list(VALUES_SETS))
def test_template_renders_every_http_service_with_deployment_and_service(
    helm_binary: Path, values_set: str
) -> None:
    manifests = render(helm_binary, VALUES_SETS[values_set])

    deployments = by_kind(manifests, "Deployment")
    services = by_kind(manifests, "Service")
    for name in HTTP_SERVICES:
        assert f"ticketing-{name}" in deployments
        assert f"ticketing-{name}" in services
    assert {"ticketing-retry-worker", "ticketing-operator"} <= set(deployments)
    assert "ticketing-retry-worker" not in services


def test_every_container_runs_locked_down(helm_binary: Path) -> None:
    manifests = render(helm_binary, VALUES_SETS["in-cluster-everything"])

    workloads = [
        *by_kind(manifests, "Deployment").values(),
        *by_kind(manifests, "StatefulSet").values(),
        *by_kind(manifests, "Job").values(),
    ]
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            assert "resources" in container
    for deployment in by_kind(manifests, "Deployment").values():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_http_services_are_probed_on_healthz_and_readyz(helm_binary: Path) -> None:
    deployments = by_kind(render(helm_binary), "Deployment")

    for name in HTTP_SERVICES:
        container = deployments[f"ticketing-{name}"]["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8000}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8000}
        assert container["command"] == ["python", "-m", "ticketing", name]


def test_liveness_waits_for_a_start_that_waits_for_kafka(helm_binary: Path) -> None:
    """A component waiting for a broker at a first install is not restarted meanwhile: its
    startup probe outlasts the wait it is told, and liveness begins after it."""
    deployments = by_kind(render(helm_binary, (), "kafka.waitSeconds=120"), "Deployment")
    waiting = set()
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        if "livenessProbe" not in container:
            continue
        startup = container["startupProbe"]
        assert startup["httpGet"] == container["livenessProbe"]["httpGet"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 120 + 30
        env = {e["name"]: e.get("value") for e in container["env"]}
        if "TICKETING_KAFKA_BOOTSTRAP" in env:
            assert env["TICKETING_KAFKA_WAIT_SECONDS"] == "120"
            waiting.add(name)
    kafka_users = {"reservation", "payment", "retry-worker", "retry-consumer"}
    assert waiting == {f"ticketing-{name}" for name in kafka_users}


def test_replicas_are_left_to_the_operator_and_the_autoscalers(helm_binary: Path) -> None:
    manifests = render(helm_binary, (), "components.payment.autoscaling.enabled=false")

    deployments = by_kind(manifests, "Deployment")
    autoscaled = set(by_kind(manifests, "HorizontalPodAutoscaler"))
    assert "replicas" not in deployments["ticketing-retry-worker"]["spec"]
    for name in autoscaled:
        assert "replicas" not in deployments[name]["spec"]
    assert deployments["ticketing-payment"]["spec"]["replicas"] == 1
    assert autoscaled == {f"ticketing-{n}" for n in HTTP_SERVICES if n != "payment"}


def test_every_pod_that_uses_the_database_starts_after_the_migrations(helm_binary: Path) -> None:
    deployments = by_kind(render(helm_binary), "Deployment")

    waiting, using = set(), set()
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        database = [v for v in pod["containers"][0]["env"] if v["name"] == "TICKETING_DATABASE_URL"]
        if database:
            using.add(name)
        for init in pod.get("initContainers", []):
            assert init["command"] == ["python", "-m", "ticketing", "migrate", "--wait"]
            assert [v for v in init["env"] if v["name"] == "TICKETING_DATABASE_URL"] == database
            waiting.add(name)

    assert using and waiting == using


def test_generated_secret_is_kept_and_holds_no_value_from_values(helm_binary: Path) -> None:
    manifests = render(helm_binary)

    secret = by_kind(manifests, "Secret")["ticketing"]
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert {
        "login-signing-keys",
        "admission-signing-keys",
        "operator-token",
        "database-url",
    } <= set(secret["data"])
    assert "secret" not in json.dumps(chart_values()["secrets"]).replace("existingSecret", "")


def test_existing_secrets_replace_generated_ones(helm_binary: Path) -> None:
    manifests = render(helm_binary, VALUES_SETS["external-backing"])

    secret = by_kind(manifests, "Secret")["ticketing"]
    assert not secret.get("data")
    env = {
        v["name"]: v.get("valueFrom", {})
        for v in by_kind(manifests, "Deployment")["ticketing-reservation"]["spec"]["template"][
            "spec"
        ]["containers"][0]["env"]
    }
    assert env["TICKETING_LOGIN_JWKS_URL"] == {}  # a plain value: the user service's JWKS
    user = by_kind(manifests, "Deployment")["ticketing-user"]["spec"]["template"]["spec"]
    user_env = {v["name"]: v.get("valueFrom", {}) for v in user["containers"][0]["env"]}
    assert user_env["TICKETING_LOGIN_SIGNING_KEYS"]["secretKeyRef"]["name"] == "ticketing-app"
    assert env["TICKETING_DATABASE_URL"]["secretKeyRef"] == {
        "name": "ticketing-backing",
        "key": "database-url",
    }
    assert not by_kind(manifests, "StatefulSet")


def test_network_policies_admit_to_each_backing_server_exactly_the_pods_wired_to_it(
    helm_binary: Path,
) -> None:
    manifests = render(helm_binary, (), "networkPolicy.enabled=true")
    policies = by_kind(manifests, "NetworkPolicy")
    workloads = [*by_kind(manifests, "Deployment").values(), *by_kind(manifests, "Job").values()]

    def admitted(server: str) -> set[str]:
        rule = policies[f"ticketing-{server}"]["spec"]["ingress"][0]["from"][0]["podSelector"]
        return set(rule["matchExpressions"][0]["values"])

    def wired(server: str) -> set[str]:
        """Components with a container (init containers too) whose settings name the server."""
        return {
            w["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
            for w in workloads
            for c in w["spec"]["template"]["spec"].get("initContainers", [])
            + w["spec"]["template"]["spec"]["containers"]
            if f"ticketing-{server}:" in json.dumps(container_env(manifests, c))
        }

    for server in ("redis", "mariadb", "kafka"):
        assert admitted(server) == wired(server), server


def test_ingress_sends_the_waiting_room_to_the_queue_and_the_rest_to_the_gateway(
    helm_binary: Path,
) -> None:
    ingress = by_kind(render(helm_binary, (), "ingress.enabled=true"), "Ingress")["ticketing"]

    paths = {
        p["path"]: p["backend"]["service"]["name"]
        for p in ingress["spec"]["rules"][0]["http"]["paths"]
    }
    assert paths == {
        "/sales": "ticketing-queue",
        "/app": "ticketing-queue",
        "/": "ticketing-gateway",
    }


def test_httproute_has_the_ingress_paths_attached_to_the_given_gateway(
    helm_binary: Path,
) -> None:
    manifests = render(
        helm_binary, (), "gatewayApi.enabled=true", "gatewayApi.parentRefs[0].name=web",
        "gatewayApi.parentRefs[0].namespace=gateways", "gatewayApi.hostnames={tickets.example.org}",
    )  # fmt: skip

    (route,) = by_kind(manifests, "HTTPRoute").values()
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [{"name": "web", "namespace": "gateways"}]
    assert route["spec"]["hostnames"] == ["tickets.example.org"]
    services = by_kind(manifests, "Service")
    paths = {}
    for rule in route["spec"]["rules"]:
        (match,) = rule["matches"]
        (backend,) = rule["backendRefs"]
        assert match["path"]["type"] == "PathPrefix"
        assert backend["port"] == services[backend["name"]]["spec"]["ports"][0]["port"]
        paths[match["path"]["value"]] = backend["name"]
    assert paths == {
        p["path"]: f"ticketing-{p['component']}" for p in chart_values()["ingress"]["paths"]
    }


def gateway_env(manifests: list[Manifest], fullname: str = "ticketing") -> dict[str, str]:
    deployment = by_kind(manifests, "Deployment")[f"{fullname}-gateway"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {v["name"]: v.get("value", "") for v in container["env"]}


def test_gateway_reaches_every_routed_service_through_its_in_cluster_service(
    helm_binary: Path,
) -> None:
    manifests = render(helm_binary, (), release="spring")

    env = gateway_env(manifests, fullname="spring-ticketing")
    services = by_kind(manifests, "Service")
    for component in COMPONENTS:
        service = services[f"spring-ticketing-{component}"]
        port = service["spec"]["ports"][0]["port"]
        assert env[f"TICKETING_GATEWAY_{component.upper()}_URL"] == (
            f"http://spring-ticketing-{component}:{port}"
        )


def test_gateway_gets_no_url_for_a_disabled_service(helm_binary: Path) -> None:
    env = gateway_env(render(helm_binary, (), "components.payment.enabled=false"))

    assert "TICKETING_GATEWAY_PAYMENT_URL" not in env
    assert env["TICKETING_GATEWAY_SEAT_URL"] == "http://ticketing-seat:80"
    assert "TICKETING_GATEWAY_GATEWAY_URL" not in env


def test_network_policies_admit_the_ingress_controller_only_to_the_gateway_and_queue(
    helm_binary: Path,
) -> None:
    policies = by_kind(render(helm_binary, (), "networkPolicy.enabled=true"), "NetworkPolicy")

    def sources(component: str) -> list[str]:
        rule = policies[f"ticketing-{component}"]["spec"]["ingress"][0]
        return sorted(next(iter(source)) for source in rule["from"])

    for component in ("gateway", "queue"):
        assert sources(component) == ["namespaceSelector", "podSelector"]
    for component in ("user", "event", "seat", "reservation", "payment"):
        # The release's own pods, the gateway among them, still reach them.
        assert sources(component) == ["podSelector"]


def test_service_monitor_scrapes_our_components_not_the_backing_servers(
    helm_binary: Path,
) -> None:
    manifests = render(helm_binary, (), "serviceMonitor.enabled=true")

    (monitor,) = by_kind(manifests, "ServiceMonitor").values()
    excluded = monitor["spec"]["selector"]["matchExpressions"][0]
    assert excluded["operator"] == "NotIn"
    assert sorted(excluded["values"]) == ["kafka", "mariadb", "redis"]


def test_dashboard_configmap_is_labelled_for_the_grafana_sidecar(helm_binary: Path) -> None:
    configmap = by_kind(render(helm_binary), "ConfigMap")["ticketing-dashboards"]

    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["ticketing-sale.json"])
    expressions = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in [
        "ticketing_queue_waiting",
        "ticketing_queue_admitted_total",
        "ticketing_queue_active_sessions",
        "ticketing_seats",
        "ticketing_reservation_hold_to_confirmed_seconds",
        "ticketing_retry_backlog",
        "ticketing_dead_lettered_total",
    ]:
        assert metric in expressions


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("environment=staging", "at '/environment': value must be one of 'local', 'production'"),
        ("image.digest=latest", "at '/image/digest'"),
        ("components.queue.backends[0]=memcached", "at '/components/queue/backends/0'"),
        ("components.queue.autoscaling.maxReplicas=0", "maxReplicas"),
        ("securityContext.allowPrivilegeEscalation=true", "allowPrivilegeEscalation"),
        ("kafka.enabled=false", "set externalKafka.bootstrap"),
        ("mariadb.enabled=false", "set externalDatabase.existingSecret"),
        ("externalRedis.cluster=true", "set redis.enabled to false"),
        (
            "ingress.paths[0].path=/,ingress.paths[0].component=nobody",
            'points at component "nobody"',
        ),
        ("components.gateway.enabled=false", 'points at component "gateway"'),
        ("gatewayApi.enabled=true", "set gatewayApi.parentRefs"),
        (
            "kafka.topics.retry.replicationFactor=3",
            "kafka.enabled runs one broker, which holds one copy of each topic: "
            "set kafka.topics.retry.replicationFactor to 1",
        ),
        ("kafka.topics.main.minInsyncReplicas=2", "set kafka.topics.main.replicationFactor to 1"),
        ("kafka.topics.main.partitions=0", "at '/kafka/topics/main/partitions'"),
        (
            "components.event.enabled=false",
            'URL points at component "event", which is not an enabled',
        ),
    ],
    ids=[
        "environment",
        "digest",
        "backend",
        "max-replicas",
        "privilege",
        "no-kafka",
        "no-database",
        "in-cluster-redis-as-cluster",
        "ingress-target",
        "ingress-without-gateway",
        "route-without-gateway",
        "in-cluster-replication",
        "in-cluster-min-insync",
        "no-partitions",
        "peer-disabled",
    ],
)
def test_template_refuses_wrong_values_with_a_clear_message(
    helm_binary: Path, assignment: str, message: str
) -> None:
    with pytest.raises(AssertionError) as refused:
        render(helm_binary, (), assignment)

    assert message in str(refused.value)


@pytest.mark.parametrize("cluster", [False, True])
def test_every_component_on_redis_is_told_whether_it_is_a_cluster(
    helm_binary: Path, cluster: bool
) -> None:
    manifests = render(
        helm_binary,
        VALUES_SETS["external-backing"],
        f"externalRedis.cluster={str(cluster).lower()}",
    )
    told = {}
    for name, deployment in by_kind(manifests, "Deployment").items():
        env = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        if "TICKETING_REDIS_URL" in env:
            told[name] = CommonSettings.model_validate(
                {"redis_cluster": env.get("TICKETING_REDIS_CLUSTER", {}).get("value", "false")}
            ).redis_cluster
        else:
            assert "TICKETING_REDIS_CLUSTER" not in env, name

    assert told and told == dict.fromkeys(told, cluster)


@pytest.mark.parametrize("values_set", ["default", "external-backing"])
def test_every_component_that_creates_topics_reads_the_charts_topic_settings(
    helm_binary: Path, values_set: str
) -> None:
    manifests = render(helm_binary, VALUES_SETS[values_set])
    topics = chart_values()["kafka"]["topics"]
    for path in VALUES_SETS[values_set]:
        for family, overrides in yaml.safe_load(path.read_text())["kafka"]["topics"].items():
            topics[family] |= overrides
    expected = {
        family: TopicSpec(
            family,
            topics[name]["partitions"],
            topics[name]["replicationFactor"],
            topics[name]["minInsyncReplicas"],
        )
        for family, name in FAMILY_VALUES.items()
    }

    specs = {}
    for name, deployment in by_kind(manifests, "Deployment").items():
        env = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        # Only a component wired to Kafka creates topics; the others are given nothing about them.
        if "TICKETING_KAFKA_BOOTSTRAP" not in env:
            assert not [v for v in env if v.startswith("TICKETING_KAFKA_")], name
            continue
        kafka = {
            variable.removeprefix("TICKETING_").lower(): entry["value"]
            for variable, entry in env.items()
            if variable.startswith("TICKETING_KAFKA_") and variable != "TICKETING_KAFKA_BOOTSTRAP"
        }
        # The settings ignore an unknown name: each one the chart sets must be a field.
        assert set(kafka) <= set(CommonSettings.model_fields), name
        settings = CommonSettings.model_validate(kafka)
        specs[name] = {family: settings.topic_spec(family) for family in TopicFamily}

    assert sorted(specs) == [
        f"ticketing-{c}" for c in ("payment", "reservation", "retry-consumer", "retry-worker")
    ]
    assert all(found == expected for found in specs.values()), specs


def test_main_topics_give_every_replica_of_their_consumers_a_partition() -> None:
    """The rule of the default: as many partitions as the most replicas a consumer of the main
    topics may scale to, in the chart and in the settings a local run uses."""
    values = chart_values()
    most_replicas = max(
        values["components"][c]["autoscaling"]["maxReplicas"] for c in MAIN_TOPIC_CONSUMERS
    )

    assert values["kafka"]["topics"]["main"]["partitions"] >= most_replicas
    assert CommonSettings().kafka_main_partitions >= most_replicas
    assert {
        family: values["kafka"]["topics"][name]["replicationFactor"]
        for family, name in FAMILY_VALUES.items()
    } == dict.fromkeys(TopicFamily, 1), "the in-cluster broker holds one copy"


def test_readme_documents_every_value() -> None:
    readme = (CHART / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.MULTILINE))

    def leaves(node: object, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        if isinstance(node, dict) and node:
            # Components share one set of fields, documented once as components.<name>.*.
            keys = ["<name>"] if path == ("components",) else list(node)
            values = list(node.values())[:1] if path == ("components",) else list(node.values())
            return [
                leaf for k, v in zip(keys, values, strict=True) for leaf in leaves(v, (*path, k))
            ]
        return [path]

    undocumented = [
        ".".join(leaf)
        for leaf in leaves(chart_values(), ())
        if not any(".".join(leaf[:i]) in documented for i in range(1, len(leaf) + 1))
    ]
    assert undocumented == []


def test_chart_ships_the_operator_crd_unchanged() -> None:
    assert (CHART / "crds" / "crd-ticketevent.yaml").read_bytes() == (
        ROOT / "manifests" / "crd-ticketevent.yaml"
    ).read_bytes(), "copy manifests/crd-ticketevent.yaml to charts/ticketing/crds/"


def test_chart_ships_the_operator_rbac_rules_unchanged(helm_binary: Path) -> None:
    source = ROOT / "manifests" / "rbac-operator.yaml"
    assert source.exists(), "manifests/rbac-operator.yaml (the operator's RBAC) is missing"
    assert (CHART / "files" / "rbac-operator.yaml").read_bytes() == source.read_bytes(), (
        "copy manifests/rbac-operator.yaml to charts/ticketing/files/"
    )
    wanted = {
        d["kind"]: d["rules"]
        for d in yaml.safe_load_all(source.read_text())
        if d and d["kind"] in ("ClusterRole", "Role")
    }

    manifests = render(helm_binary)

    rendered = {m["kind"]: m["rules"] for m in manifests if m["kind"] in ("ClusterRole", "Role")}
    assert rendered == wanted
    for binding in [m for m in manifests if m["kind"].endswith("RoleBinding")]:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "ticketing-operator", "namespace": "sale"}
        ]


SEED = "a-seed-of-at-least-thirty-two-characters"


def test_generated_secret_is_the_same_on_every_render_with_a_seed(helm_binary: Path) -> None:
    first = by_kind(render(helm_binary, (), f"secrets.seed={SEED}"), "Secret")["ticketing"]
    second = by_kind(render(helm_binary, (), f"secrets.seed={SEED}"), "Secret")["ticketing"]
    other = by_kind(render(helm_binary, (), f"secrets.seed={SEED}x"), "Secret")["ticketing"]
    elsewhere = by_kind(render(helm_binary, (), f"secrets.seed={SEED}", namespace="autumn"),
                        "Secret")["ticketing"]  # fmt: skip

    assert first["data"] == second["data"]
    values = list(first["data"].values())
    assert len(set(values)) == len(values), "two credentials are equal"
    for key in (
        "login-signing-keys",
        "admission-signing-keys",
        "operator-token",
        "mariadb-password",
        "mariadb-root-password",
    ):
        assert other["data"][key] != first["data"][key]
        assert elsewhere["data"][key] != first["data"][key]
    assert len(base64.b64decode(first["data"]["operator-token"])) >= 32
