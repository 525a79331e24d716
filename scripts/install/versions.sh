# The pinned versions of everything the install scripts build from source, in one place.
ETCD_VERSION=v3.6.16
KUBERNETES_VERSION=v1.34.4
HELM_VERSION=v3.19.5
KIND_VERSION=v0.33.0
# The CoreDNS release kubeadm $KUBERNETES_VERSION deploys (its constants.CoreDNSVersion).
COREDNS_VERSION=v1.12.1
LOCAL_PATH_PROVISIONER_VERSION=v0.0.30
