// Command etcd is the upstream etcd server, built through the Go module proxy.
//
// go.etcd.io/etcd/server/v3 carries replace directives in its go.mod, so a
// plain `go install` of it fails; a wrapper main module that imports etcdmain
// builds it with the published versions of its sibling modules.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
