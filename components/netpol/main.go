// Command netpol is microkube's NetworkPolicy enforcer: kube-router's network
// policy controller (iptables + ipset), the same controller k3s embeds, run on
// its own without kube-router's routing and service proxy.
//
// It takes kube-router's own flags (--kubeconfig, --hostname-override,
// --service-cluster-ip-range, --iptables-sync-period, --v...), so kube-router's
// documentation applies to its argument file. Only the firewall runs: the
// router, service proxy and load balancer flags are accepted and ignored.
//
// --ready-address (ours) serves /healthz on that address: 503 until the first
// full policy sync has written the node's rules, then kube-router's own health
// verdict (the controller's heartbeat within its sync period). Upstream's
// health server (all interfaces) is left off.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudnativelabs/kube-router/v2/pkg/controllers/netpol"
	"github.com/cloudnativelabs/kube-router/v2/pkg/healthcheck"
	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	"github.com/cloudnativelabs/kube-router/v2/pkg/version"
	"github.com/spf13/pflag"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "netpol: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	klog.InitFlags(nil)
	config := options.NewKubeRouterConfig()
	config.AddFlags(pflag.CommandLine)
	readyAddress := pflag.String("ready-address", "127.0.0.1:10265",
		"address of the readiness endpoint (/healthz); empty disables it")
	pflag.Parse()
	if err := flag.CommandLine.Parse([]string{}); err != nil {
		return err
	}
	_ = flag.Set("logtostderr", "true")
	_ = flag.Set("v", config.VLevel)
	if config.HelpRequested {
		pflag.Usage()
		return nil
	}
	if config.Version {
		version.PrintVersion(false)
		return nil
	}
	if config.Kubeconfig == "" && config.Master == "" {
		return fmt.Errorf("--kubeconfig is required")
	}
	// Only the firewall; upstream's health server stays off (ours is on loopback).
	config.RunFirewall, config.RunRouter, config.RunServiceProxy, config.RunLoadBalancer = true, false, false, false
	config.HealthPort = 0
	config.MetricsEnabled = false

	restConfig, err := clientcmd.BuildConfigFromFlags(config.Master, config.Kubeconfig)
	if err != nil {
		return fmt.Errorf("reading %s: %w", config.Kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
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
		return fmt.Errorf("network policy controller: %w", err)
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
	case <-time.After(config.CacheSyncTimeout):
		return fmt.Errorf("informer caches not synced within %s", config.CacheSyncTimeout)
	}

	hc, err := healthcheck.NewHealthController(config)
	if err != nil {
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

	if *readyAddress != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
			if !firstSync.Load() {
				http.Error(w, "first policy sync not done", http.StatusServiceUnavailable)
				return
			}
			hc.Handler(w, r)
		})
		server := &http.Server{Addr: *readyAddress, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := server.ListenAndServe(); err != nil && err != http.ErrServerClosed {
				klog.Errorf("readiness endpoint: %v", err)
			}
		}()
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	klog.Info("stopping the network policy controller")
	close(stopCh)
	wg.Wait()
	return nil
}
