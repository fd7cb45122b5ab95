// Command etcd is microkube's datastore: upstream etcd's own server, built
// from the published go.etcd.io/etcd/server/v3 module.
//
// It hands its arguments to etcdmain unchanged, so it takes exactly the flags
// and environment variables of a stock etcd binary (--name, --data-dir,
// --initial-cluster, ETCD_*), and microkube can add, remove and promote
// members with the usual etcd semantics. startupPagesSettle after start it gives
// back the code pages its start-up mapped (components/pageout, copied in by the
// build: components.yaml `shared`).
package main

import (
	"os"

	"go.etcd.io/etcd/client/pkg/v3/logutil"
	"go.etcd.io/etcd/server/v3/etcdmain"
	"go.uber.org/zap"
)

func main() {
	releaseStartupPagesAfter(startupPagesSettle, func(mapped uint64) {
		// A line in etcd's own default log format (JSON on stderr).
		if lg, err := logutil.CreateDefaultZapLogger(zap.InfoLevel); err == nil {
			lg.Info("released start-up code pages", zap.Uint64("mapped-mib", mapped>>20))
			_ = lg.Sync()
		}
	})
	etcdmain.Main(os.Args)
}
