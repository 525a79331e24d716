"""A real Kubernetes control plane (etcd and kube-apiserver) on loopback, as envtest runs one.

There is no scheduler, controller-manager or kubelet: objects are stored, validated, defaulted
and authorised by the real API server, but nothing reconciles them (a Deployment never gets
Pods). The binaries come from scripts/install/controlplane.sh.
"""

import json
import os
import shutil
import ssl
import subprocess
import urllib.request
from pathlib import Path

from ticketing_dev.paths import bin_dir
from ticketing_dev.process import ManagedProcess, ServerNotReady
from ticketing_dev.servers import MissingPrerequisite

INSTALL_HINT = "run scripts/install/controlplane.sh (it builds them with Go, about 6 minutes cold)"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CERT_DAYS = 30


def find_binary(name: str) -> Path:
    """An installed control-plane binary (etcd, kube-apiserver, helm), else MissingPrerequisite."""
    path = bin_dir() / name
    if not os.access(path, os.X_OK):
        raise MissingPrerequisite(f"{name} is not installed in {bin_dir()}: {INSTALL_HINT}")
    return path


def find_kubectl() -> Path:
    """kubectl built with the API server (same version), else the machine's PATH."""
    cached = bin_dir() / "kubectl"
    if os.access(cached, os.X_OK):
        return cached
    found = shutil.which("kubectl")
    if found is None:
        raise MissingPrerequisite(f"kubectl is not installed in {bin_dir()}: {INSTALL_HINT}")
    return Path(found)


class ToolFailed(RuntimeError):
    """kubectl or helm exited non-zero; the message carries its stderr."""


class Certificates:
    """A throwaway CA, the API server's serving certificate, an admin client certificate in
    system:masters, and the service-account signing key, made with the openssl CLI."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca_cert = directory / "ca.crt"
        self.ca_key = directory / "ca.key"
        self.serving_cert = directory / "apiserver.crt"
        self.serving_key = directory / "apiserver.key"
        self.admin_cert = directory / "admin.crt"
        self.admin_key = directory / "admin.key"
        self.service_account_key = directory / "service-account.key"
        self.service_account_pub = directory / "service-account.pub"

    def create(self) -> None:
        if self.admin_cert.exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        self._new_key(self.ca_key)
        self._openssl(
            "req", "-x509", "-new", "-key", self.ca_key, "-days", str(CERT_DAYS),
            "-subj", "/CN=ticketing-local-ca", "-out", self.ca_cert,
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        self._issue(
            self.serving_key, self.serving_cert, "/CN=kube-apiserver",
            "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
            "DNS:kubernetes.default.svc,IP:10.0.0.1\nextendedKeyUsage=serverAuth\n",
        )  # fmt: skip
        # O=system:masters is the group RBAC lets do anything, so no binding is needed.
        self._issue(
            self.admin_key, self.admin_cert, "/O=system:masters/CN=ticketing-admin",
            "extendedKeyUsage=clientAuth\n",
        )  # fmt: skip
        self._openssl(
            "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", self.service_account_key,
        )  # fmt: skip
        self._openssl("pkey", "-in", self.service_account_key, "-pubout",
                      "-out", self.service_account_pub)  # fmt: skip

    def _openssl(self, *args: str | Path) -> None:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise MissingPrerequisite("openssl is not installed: apt-get install openssl")
        result = subprocess.run(
            [openssl, *map(str, args)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise ServerNotReady(f"openssl {args[0]} failed: {result.stderr.strip()}")

    def _new_key(self, path: Path) -> None:
        self._openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-out", path)  # fmt: skip

    def _issue(self, key: Path, cert: Path, subject: str, extensions: str) -> None:
        request = cert.with_suffix(".csr")
        extfile = cert.with_suffix(".ext")
        extfile.write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n" + extensions
        )
        self._new_key(key)
        self._openssl("req", "-new", "-key", key, "-subj", subject, "-out", request)
        self._openssl(
            "x509", "-req", "-in", request, "-CA", self.ca_cert, "-CAkey", self.ca_key,
            "-CAcreateserial", "-days", str(CERT_DAYS), "-extfile", extfile, "-out", cert,
        )  # fmt: skip


class ControlPlane:
    """etcd and kube-apiserver on the given loopback ports, with their data, logs, certificates
    and an admin kubeconfig under `run_dir`. Two instances with different ports and run
    directories do not share anything."""

    def __init__(self, run_dir: Path, *, etcd_port: int, apiserver_port: int) -> None:
        self.run_dir = run_dir
        self.etcd_port = etcd_port
        self.apiserver_port = apiserver_port
        self.certs = Certificates(run_dir / "pki")
        self.kubeconfig = run_dir / "kubeconfig"
        etcd = find_binary("etcd")
        apiserver = find_binary("kube-apiserver")
        self.helm_binary = find_binary("helm")
        self.etcd = ManagedProcess(
            "etcd",
            [
                str(etcd),
                "--name=ticketing",
                f"--data-dir={run_dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                # A single member never talks to peers; port 0 keeps the peer
                # listener from taking a fixed port another instance would want.
                "--listen-peer-urls=http://127.0.0.1:0",
                "--unsafe-no-fsync=true",  # throwaway data: durability only costs time
                "--log-level=warn",
            ],
            run_dir / "logs" / "etcd.log",
        )
        certs = self.certs
        self.apiserver = ManagedProcess(
            "kube-apiserver",
            [
                str(apiserver),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={apiserver_port}",
                f"--cert-dir={certs.directory}",
                f"--tls-cert-file={certs.serving_cert}",
                f"--tls-private-key-file={certs.serving_key}",
                f"--client-ca-file={certs.ca_cert}",
                "--authorization-mode=RBAC",
                f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
                f"--service-account-key-file={certs.service_account_pub}",
                f"--service-account-signing-key-file={certs.service_account_key}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                # Without a controller-manager nobody creates a namespace's "default"
                # ServiceAccount, and this plugin would then refuse every Pod.
                "--disable-admission-plugins=ServiceAccount",
                # The endpoint reconciler would publish 127.0.0.1 as the address of the
                # `kubernetes` Service, which Endpoints validation refuses (loopback).
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                "--v=0",
            ],
            run_dir / "logs" / "kube-apiserver.log",
        )

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    def env(self) -> dict[str, str]:
        """Environment for kubectl, helm and kopf run as subprocesses against this cluster."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            # Helm's caches and repositories stay in the run directory, not the user's home.
            "HELM_CACHE_HOME": str(self.run_dir / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(self.run_dir / "helm" / "config"),
            "HELM_DATA_HOME": str(self.run_dir / "helm" / "data"),
        }

    def kubectl(self, *args: str, timeout: float = 60) -> str:
        """Run kubectl against this cluster and return its output; fail with its stderr."""
        return self._run(find_kubectl(), args, timeout)

    def helm(self, *args: str, timeout: float = 120) -> str:
        """Run helm against this cluster and return its output; fail with its stderr."""
        return self._run(self.helm_binary, args, timeout)

    def _run(self, binary: Path, args: tuple[str, ...], timeout: float) -> str:
        result = subprocess.run(
            [str(binary), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            command = " ".join([binary.name, *args])
            raise ToolFailed(f"{command} exited {result.returncode}: {result.stderr.strip()}")
        return result.stdout

    def start(self, timeout: float = 90) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.certs.create()
        self._write_kubeconfig()
        self.etcd.start()
        try:
            self.etcd.wait_ready(self._etcd_healthy, timeout)
            self.apiserver.start()
            self.apiserver.wait_ready(self._apiserver_ready, timeout, interval=0.5)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # The API server first: stopped after etcd it would spend its grace period retrying.
        self.apiserver.stop()
        self.etcd.stop()

    def __enter__(self) -> "ControlPlane":
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def get(self, path: str, timeout: float = 5) -> bytes:
        """An authenticated GET against the API server as the admin user."""
        context = ssl.create_default_context(cafile=str(self.certs.ca_cert))
        context.load_cert_chain(str(self.certs.admin_cert), str(self.certs.admin_key))
        with urllib.request.urlopen(self.server + path, context=context, timeout=timeout) as reply:
            return bytes(reply.read())

    def version(self) -> dict[str, str]:
        return dict(json.loads(self.get("/version")))

    def _etcd_healthy(self) -> bool:
        with urllib.request.urlopen(self.etcd_url + "/health", timeout=2) as reply:
            return bool(json.loads(reply.read()).get("health") == "true")

    def _apiserver_ready(self) -> bool:
        return self.get("/readyz", timeout=2) == b"ok"

    def _write_kubeconfig(self) -> None:
        # JSON is YAML, and every client (kubectl, helm, the Python client, kopf) reads it.
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "ticketing-local",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority": str(self.certs.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": "ticketing-admin",
                    "user": {
                        "client-certificate": str(self.certs.admin_cert),
                        "client-key": str(self.certs.admin_key),
                    },
                }
            ],
            "contexts": [
                {
                    "name": "ticketing-local",
                    "context": {"cluster": "ticketing-local", "user": "ticketing-admin"},
                }
            ],
            "current-context": "ticketing-local",
        }
        self.kubeconfig.write_text(json.dumps(config, indent=2) + "\n")
        self.kubeconfig.chmod(0o600)
