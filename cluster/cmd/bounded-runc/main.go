// Command bounded-runc is an OCI runtime that runs runc with the capabilities
// this process cannot grant removed from the container's spec.
//
// A container engine inside a sandbox whose capability bounding set lacks some
// capability (CAP_SYS_RESOURCE in some CI sandboxes) cannot start a privileged
// container: runc asks the kernel for every capability the spec lists and fails
// with "unable to apply caps: operation not permitted". This wrapper reads the
// bounding set of its own process, drops every capability outside it from the
// bundle's config.json on "create" and "run" (and from the process file of an
// "exec", as `docker exec --privileged` gives one), and then executes the real
// runc with the same arguments. Where the bounding set is full it changes nothing.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// capabilityNames are the kernel's capability numbers, in order (linux/capability.h).
var capabilityNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
	"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
	"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
	"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
	"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
	"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

func main() {
	runc := os.Getenv("BOUNDED_RUNC_RUNC")
	if runc == "" {
		runc = "/usr/sbin/runc"
	}
	if path, inProcess, ok := specOf(os.Args[1:]); ok {
		if err := dropUnboundedCapabilities(path, inProcess); err != nil {
			fmt.Fprintf(os.Stderr, "bounded-runc: %v\n", err)
			os.Exit(1)
		}
	}
	args := append([]string{runc}, os.Args[1:]...)
	if err := syscall.Exec(runc, args, os.Environ()); err != nil {
		fmt.Fprintf(os.Stderr, "bounded-runc: exec %s: %v\n", runc, err)
		os.Exit(1)
	}
}

// specOf returns the file whose capabilities a command line starts a process
// with: the bundle's config.json for "create" and "run", the --process file for
// "exec" (inProcess: the capabilities are at its top level, not under "process").
func specOf(args []string) (path string, inProcess bool, ok bool) {
	command := ""
	bundle := "."
	process := ""
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if value, taken, found := flagValue(args, i, "bundle", "b"); found {
			bundle, i = value, i+taken
			continue
		}
		if value, taken, found := flagValue(args, i, "process", "p"); found {
			process, i = value, i+taken
			continue
		}
		switch {
		case command == "" && !strings.HasPrefix(arg, "-"):
			command = arg
		case command == "" && takesValue(arg):
			i++
		}
	}
	switch {
	case command == "create" || command == "run":
		return filepath.Join(bundle, "config.json"), false, true
	case command == "exec" && process != "":
		return process, true, true
	}
	return "", false, false
}

// flagValue reads the flag --long (or -short) at args[i], as "--long value" or
// "--long=value"; taken is how many arguments after args[i] it used.
func flagValue(args []string, i int, long, short string) (value string, taken int, found bool) {
	arg := args[i]
	switch {
	case arg == "--"+long || arg == "-"+short:
		if i+1 < len(args) {
			return args[i+1], 1, true
		}
		return "", 0, true
	case strings.HasPrefix(arg, "--"+long+"="):
		return strings.TrimPrefix(arg, "--"+long+"="), 0, true
	}
	return "", 0, false
}

// takesValue tells whether one of runc's global flags is followed by its value.
func takesValue(flag string) bool {
	if strings.Contains(flag, "=") {
		return false
	}
	switch strings.TrimLeft(flag, "-") {
	case "root", "log", "log-format", "criu", "rootless":
		return true
	}
	return false
}

// boundingSet returns the names of the capabilities in this process's bounding set.
func boundingSet() (map[string]bool, error) {
	status, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, err
	}
	defer status.Close()
	scanner := bufio.NewScanner(status)
	for scanner.Scan() {
		line := scanner.Text()
		if !strings.HasPrefix(line, "CapBnd:") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(line, "CapBnd:")), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("reading CapBnd: %w", err)
		}
		held := map[string]bool{}
		for bit, name := range capabilityNames {
			if mask&(1<<uint(bit)) != 0 {
				held[name] = true
			}
		}
		return held, nil
	}
	return nil, fmt.Errorf("no CapBnd line in /proc/self/status")
}

// dropUnboundedCapabilities rewrites the spec without the capabilities outside the bounding set.
func dropUnboundedCapabilities(configPath string, inProcess bool) error {
	held, err := boundingSet()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(raw, &spec); err != nil {
		return fmt.Errorf("parsing %s: %w", configPath, err)
	}
	process := spec
	if !inProcess {
		process, _ = spec["process"].(map[string]any)
	}
	capabilities, _ := process["capabilities"].(map[string]any)
	changed := false
	for set, value := range capabilities {
		listed, _ := value.([]any)
		kept := make([]any, 0, len(listed))
		for _, capability := range listed {
			name, _ := capability.(string)
			if held[name] {
				kept = append(kept, capability)
			} else {
				changed = true
			}
		}
		capabilities[set] = kept
	}
	if !changed {
		return nil
	}
	out, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(configPath, out, 0o600)
}
