//go:build tools

// Keeps upstream's ctr and shim mains in this module's build list, so `go mod tidy`
// records what `go build` of them needs (components.yaml builds them as the ctr and
// containerd-shim-runc-v2 binaries).
package main

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
)
