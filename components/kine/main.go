// Command kine is the datastore of `datastore: sqlite` (and external SQL): upstream
// kine's own command, run exactly as github.com/k3s-io/kine's main.go runs it, plus
// one thing: startupPagesSettle after start it gives back the code pages its start-up
// mapped (components/pageout, copied in by the build: components.yaml `shared`).
// Upstream's main package cannot be imported, so this is its copy.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/k3s-io/kine/pkg/app"
	"github.com/sirupsen/logrus"
)

func main() {
	releaseStartupPagesAfter(startupPagesSettle, func(mapped uint64) {
		logrus.WithField("mappedMiB", mapped>>20).Info("released start-up code pages")
	})
	app := app.New()
	if err := app.Run(os.Args); err != nil {
		if !errors.Is(err, context.Canceled) {
			logrus.Fatal(err)
		}
	}
}
