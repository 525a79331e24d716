// Command pause is the sandbox process of every pod on the offline kind node: it holds the
// pod's namespaces open, reaps the zombies it inherits as PID 1, and exits when told to stop.
// The node's containerd names it as its sandbox image (cluster/node/containerd.toml).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for received := range signals {
		if received != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
