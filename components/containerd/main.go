// Command containerd is upstream containerd's own daemon, run exactly as
// github.com/containerd/containerd/v2/cmd/containerd/main.go runs it (the same
// command, the same builtins: the plugins the manifest's build tags leave in),
// plus one thing: startupPagesSettle after start it gives back the code pages its
// start-up mapped (components/pageout, copied in by the build: components.yaml
// `shared`). Upstream's main package cannot be imported, so this is its copy.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/cmd/containerd/command"
	"github.com/containerd/log"

	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"
)

func main() {
	releaseStartupPagesAfter(startupPagesSettle, func(mapped uint64) {
		log.L.WithField("mappedMiB", mapped>>20).Info("released start-up code pages")
	})
	ctx := context.Background()
	if err := command.App().Run(ctx, os.Args); err != nil {
		_, _ = fmt.Fprintln(os.Stderr, "containerd:", err)
		os.Exit(1)
	}
}
