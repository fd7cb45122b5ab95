// Command kube is microkube's multicall Kubernetes binary.
//
// One binary holds every Kubernetes daemon so the snap ships one copy of the
// shared code instead of five; the node's pod network (flanneld) and its
// NetworkPolicy enforcer (netpol) are two more, sharing client-go with them. The daemon is chosen by the name the binary is
// called under (a symlink such as kubelet -> kube) or, failing that, by the
// first argument ("kube kubelet --version"). "kube kubelite SPEC" runs the
// node's daemons together in this one process (kubelite.go). kubectl is a
// binary of its own (upstream's k8s.io/kubernetes/cmd/kubectl, see tools.go):
// it starts faster than this one, whose init runs every daemon's package setup.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"

	_ "time/tzdata" // CronJob time zones
)

var components = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() },
	"kube-proxy":              proxy.NewProxyCommand,
	"kubelet":                 func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) },
	// Not Kubernetes daemons, but node daemons that share its client code (flannel.go, netpol.go).
	"flanneld": newFlannelCommand,
	"netpol":   newNetpolCommand,
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args
	if _, ok := components[name]; !ok && name != kubeliteName && len(os.Args) > 1 {
		// "kube <component> ..." form: shift the component name off.
		name = os.Args[1]
		args = os.Args[1:]
	}
	os.Args = args
	if name == kubeliteName {
		os.Exit(runKubelite(args[1:]))
	}
	newCommand, ok := components[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "kube: unknown component %q; one of: %s\n", name, strings.Join(names(), ", "))
		os.Exit(2)
	}
	os.Exit(cli.Run(newCommand()))
}

func names() []string {
	out := []string{kubeliteName}
	for n := range components {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
