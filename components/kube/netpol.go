// The netpol part: NetworkPolicy enforcement by kube-router's network policy
// controller (iptables + ipset), the controller k3s embeds, run without
// kube-router's routing and service proxy.
//
// It takes kube-router's own flags (--kubeconfig, --hostname-override,
// --service-cluster-ip-range, --iptables-sync-period...), so kube-router's
// documentation applies to its argument file. Only the firewall runs: the
// router, service proxy and load balancer flags are accepted and ignored, and so
// is --v (kubelite's log verbosity is the process's, set by its Kubernetes parts).
//
// --ready-address (ours) serves /healthz on that address: 503 until the first
// full policy sync has written the node's rules, then kube-router's own health
// verdict (the controller's heartbeat within its sync period). Upstream's
// health server (all interfaces) is left off.
//
// The part waits (retrying) until its credentials may read what the controller
// watches: in kubelite the bootstrap RBAC is applied only after the API serves.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudnativelabs/kube-router/v2/pkg/controllers/netpol"
	"github.com/cloudnativelabs/kube-router/v2/pkg/healthcheck"
	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

const kubeRouterModule = "github.com/cloudnativelabs/kube-router/v2"

func newNetpolCommand() *cobra.Command {
	return ownFlagsCommand("netpol", "NetworkPolicy enforcement (kube-router's network policy controller)", runNetpol)
}

func runNetpol(args []string) error {
	config := options.NewKubeRouterConfig()
	fs := pflag.NewFlagSet("netpol", pflag.ContinueOnError)
	fs.Usage = func() {}
	config.AddFlags(fs)
	readyAddress := fs.String("ready-address", "127.0.0.1:10265",
		"address of the readiness endpoint (/healthz); empty disables it")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("netpol: %v", err)
	}
	if config.HelpRequested {
		fmt.Print(fs.FlagUsages())
		return nil
	}
	if config.Version {
		fmt.Printf("netpol: kube-router %s network policy controller\n", moduleVersion(kubeRouterModule))
		return nil
	}
	if config.Kubeconfig == "" && config.Master == "" {
		return errors.New("netpol: --kubeconfig is required")
	}
	// Only the firewall; upstream's health server stays off (ours is on loopback).
	config.RunFirewall, config.RunRouter, config.RunServiceProxy, config.RunLoadBalancer = true, false, false, false
	config.HealthPort = 0
	config.MetricsEnabled = false

	restConfig, err := clientcmd.BuildConfigFromFlags(config.Master, config.Kubeconfig)
	if err != nil {
		return fmt.Errorf("netpol: reading %s: %w", config.Kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	if !waitUntil(ctx, "netpol", func(c context.Context) error {
		return netpolCanStart(c, client, config.HostnameOverride)
	}) {
		return nil // stopped while waiting
	}

	stopCh := make(chan struct{})
	factory := informers.NewSharedInformerFactory(client, 0)
	podInformer := factory.Core().V1().Pods().Informer()
	nsInformer := factory.Core().V1().Namespaces().Informer()
	npInformer := factory.Networking().V1().NetworkPolicies().Informer()

	iptablesHandlers, ipsetHandlers, err := netpol.NewIPTablesHandlers(config)
	if err != nil {
		return err
	}
	npc, err := netpol.NewNetworkPolicyController(client, config, podInformer, npInformer, nsInformer,
		&sync.Mutex{}, iptablesHandlers, ipsetHandlers)
	if err != nil {
		return fmt.Errorf("netpol: network policy controller: %w", err)
	}
	if _, err := podInformer.AddEventHandler(npc.PodEventHandler); err != nil {
		return err
	}
	if _, err := nsInformer.AddEventHandler(npc.NamespaceEventHandler); err != nil {
		return err
	}
	if _, err := npInformer.AddEventHandler(npc.NetworkPolicyEventHandler); err != nil {
		return err
	}
	factory.Start(stopCh)
	synced := make(chan struct{})
	go func() { factory.WaitForCacheSync(stopCh); close(synced) }()
	select {
	case <-synced:
	case <-ctx.Done():
		close(stopCh)
		return nil
	case <-time.After(config.CacheSyncTimeout):
		close(stopCh)
		return fmt.Errorf("netpol: informer caches not synced within %s", config.CacheSyncTimeout)
	}

	hc, err := healthcheck.NewHealthController(config)
	if err != nil {
		close(stopCh)
		return err
	}
	hc.SetAlive()
	var firstSync atomic.Bool
	beats := make(chan *healthcheck.ControllerHeartbeat, 10)
	forward := make(chan *healthcheck.ControllerHeartbeat, 10)
	var wg sync.WaitGroup
	go func() {
		for beat := range beats {
			firstSync.Store(true)
			forward <- beat
		}
	}()
	wg.Add(2)
	go hc.RunCheck(forward, stopCh, &wg)
	go npc.Run(beats, stopCh, &wg)

	var server *http.Server
	if *readyAddress != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			if !firstSync.Load() {
				http.Error(w, "first policy sync not done", http.StatusServiceUnavailable)
				return
			}
			hc.Handler(w, r)
		})
		listener, err := net.Listen("tcp", *readyAddress)
		if err != nil {
			close(stopCh)
			return fmt.Errorf("netpol: readiness endpoint: %w", err)
		}
		server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = server.Serve(listener) }()
	}

	<-ctx.Done()
	klog.Info("netpol: stopping the network policy controller")
	close(stopCh)
	if server != nil {
		_ = server.Close()
	}
	wg.Wait()
	return nil
}

// netpolCanStart: nil once the part's credentials may read its Node (the controller
// reads its address) and list what the controller watches.
func netpolCanStart(ctx context.Context, client kubernetes.Interface, nodeName string) error {
	one := metav1.ListOptions{Limit: 1}
	if _, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{}); err != nil {
		return err
	}
	if _, err := client.CoreV1().Pods("").List(ctx, one); err != nil {
		return err
	}
	if _, err := client.CoreV1().Namespaces().List(ctx, one); err != nil {
		return err
	}
	_, err := client.NetworkingV1().NetworkPolicies("").List(ctx, one)
	return err
}
