// Command kube-apiserver runs the Kubernetes API server of k8s.io/kubernetes,
// built through the Go module proxy for the local control plane.
//
// k8s.io/kubernetes is importable only with its staging modules replaced by
// their published v0.x versions; scripts/install/controlplane.sh generates
// those replace directives into a copy of go.mod, so none are kept here.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
