// Command kube-apiserver is the upstream Kubernetes API server, built through
// the Go module proxy.
//
// The body is k8s.io/kubernetes/cmd/kube-apiserver/apiserver.go. The replace
// directives that make k8s.io/kubernetes importable (its staging modules
// pinned to their published v0.x versions) are generated into a copy of
// go.mod by scripts/install/controlplane.sh, not kept here.
package main

import (
	"os"
	_ "time/tzdata" // for timeZone support in CronJob

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // for JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // load all the prometheus client-go plugins
	_ "k8s.io/component-base/metrics/prometheus/version"  // for version metric registration
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	command := app.NewAPIServerCommand()
	code := cli.Run(command)
	os.Exit(code)
}
