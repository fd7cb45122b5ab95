// Command etcd is microkube's datastore: upstream etcd's own server, built
// from the published go.etcd.io/etcd/server/v3 module.
//
// It hands its arguments to etcdmain unchanged, so it takes exactly the flags
// and environment variables of a stock etcd binary (--name, --data-dir,
// --initial-cluster, ETCD_*), and microkube can add, remove and promote
// members with the usual etcd semantics.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
