module ticketing.local/controlplane/kube-apiserver

go 1.24.0

// k8s.io/kubernetes is built with the go1.24 GODEBUG defaults.
godebug default=go1.24

require k8s.io/kubernetes v1.34.4
