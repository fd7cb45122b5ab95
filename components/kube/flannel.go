// The flanneld part: flannel's pod network (the Kubernetes subnet manager and the
// vxlan backend) run from flannel's own library packages, as k3s embeds it
// (k3s pkg/agent/flannel/flannel.go). flanneld's main is package main and cannot
// be imported, so this runner does what it does (flannel main.go, v0.28.10) for
// the flags microkube's args/flanneld uses; any other flag is refused.
//
// Only the vxlan backend is linked: the udp backend needs cgo, which kube is built
// without, and microkube's network config names vxlan. Masquerade and forward rules
// are kept with iptables (flannel's nftables mode is not linked).
//
// Upstream exits when its Node has no podCIDR yet or its credentials are not yet
// authorized; in kubelite that would end the whole process, so the part waits
// (retrying) until its Node has a podCIDR and it may list Nodes, then starts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flannel-io/flannel/pkg/backend"
	_ "github.com/flannel-io/flannel/pkg/backend/vxlan" // registers the vxlan backend
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/ipmatch"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	"github.com/flannel-io/flannel/pkg/trafficmngr/iptables"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

const flannelModule = "github.com/flannel-io/flannel"

// flannelOptions: upstream flanneld's flags (same names and defaults) that this runner takes.
type flannelOptions struct {
	kubeSubnetMgr        bool
	kubeAPIURL           string
	kubeAnnotationPrefix string
	kubeConfigFile       string
	netConfPath          string
	subnetFile           string
	publicIP             string
	iface                stringList
	ipMasq               bool
	ipMasqRandomFullyOff bool
	healthzIP            string
	healthzPort          int
	iptablesResync       int
	iptablesForwardRules bool
	setNodeNetUnavail    bool
	version              bool
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func newFlannelCommand() *cobra.Command {
	return ownFlagsCommand("flanneld", "flannel's pod network (vxlan, Kubernetes subnet manager)", runFlannel)
}

// ownFlagsCommand: a part as a cobra command that parses its flags itself (upstream's
// flag names), so kubelite runs it like the Kubernetes daemons.
func ownFlagsCommand(use, short string, run func(args []string) error) *cobra.Command {
	return &cobra.Command{
		Use:                use,
		Short:              short,
		DisableFlagParsing: true,
		SilenceUsage:       true,
		RunE:               func(_ *cobra.Command, args []string) error { return run(args) },
	}
}

func parseFlannelFlags(args []string) (*flannelOptions, error) {
	o := &flannelOptions{}
	fs := flag.NewFlagSet("flanneld", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&o.kubeSubnetMgr, "kube-subnet-mgr", false, "use the Kubernetes API for subnet assignment (required)")
	fs.StringVar(&o.kubeAPIURL, "kube-api-url", "", "Kubernetes API server URL")
	fs.StringVar(&o.kubeAnnotationPrefix, "kube-annotation-prefix", "flannel.alpha.coreos.com", "Kubernetes annotation prefix")
	fs.StringVar(&o.kubeConfigFile, "kubeconfig-file", "", "kubeconfig file location")
	fs.StringVar(&o.netConfPath, "net-config-path", "/etc/kube-flannel/net-conf.json", "path to the network configuration file")
	fs.StringVar(&o.subnetFile, "subnet-file", "/run/flannel/subnet.env", "where the subnet env file is written")
	fs.StringVar(&o.publicIP, "public-ip", "", "IP accessible by other nodes for inter-host communication")
	fs.Var(&o.iface, "iface", "interface (IP or name) for inter-host communication; may repeat")
	fs.BoolVar(&o.ipMasq, "ip-masq", false, "masquerade traffic leaving the overlay network")
	fs.BoolVar(&o.ipMasqRandomFullyOff, "ip-masq-fully-random-disable", false, "disable fully-random MASQUERADE")
	fs.StringVar(&o.healthzIP, "healthz-ip", "0.0.0.0", "the IP address the healthz server listens on")
	fs.IntVar(&o.healthzPort, "healthz-port", 0, "the healthz server's port (0: off)")
	fs.IntVar(&o.iptablesResync, "iptables-resync", 5, "resync period of the iptables rules, in seconds")
	fs.BoolVar(&o.iptablesForwardRules, "iptables-forward-rules", true, "add accept rules to the FORWARD chain")
	fs.BoolVar(&o.setNodeNetUnavail, "set-node-network-unavailable", true, "set NodeNetworkUnavailable after ready")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("flanneld: %v (this runner takes only the flags of microkube's args/flanneld)", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("flanneld: unexpected argument %q", fs.Arg(0))
	}
	if !o.version && !o.kubeSubnetMgr {
		return nil, errors.New("flanneld: only --kube-subnet-mgr is supported (no etcd subnet manager)")
	}
	return o, nil
}

// moduleVersion: the version of a module linked into this binary (from its build info).
func moduleVersion(path string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == path {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func runFlannel(args []string) error {
	o, err := parseFlannelFlags(args)
	if err != nil {
		return err
	}
	if o.version {
		fmt.Println(moduleVersion(flannelModule))
		return nil
	}
	nodeName := os.Getenv("NODE_NAME")
	if nodeName == "" {
		return errors.New("flanneld: NODE_NAME must name this node")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	var ready atomic.Bool
	if o.healthzPort > 0 {
		stopHealth, err := serveHealth(net.JoinHostPort(o.healthzIP, strconv.Itoa(o.healthzPort)), &ready)
		if err != nil {
			return fmt.Errorf("flanneld: healthz: %w", err)
		}
		defer stopHealth()
	}
	if !waitUntil(ctx, "flanneld", func(c context.Context) error {
		return flannelCanStart(c, o, nodeName)
	}) {
		return nil // stopped while waiting
	}
	if err := flannelRun(ctx, o, &ready); err != nil && ctx.Err() == nil {
		return err
	}
	return nil // stopped by a signal
}

// flannelCanStart: nil once this node's Node has a podCIDR and the part's
// credentials may list Nodes (the bootstrap RBAC is applied after the API serves).
func flannelCanStart(ctx context.Context, o *flannelOptions, nodeName string) error {
	cfg, err := clientcmd.BuildConfigFromFlags(o.kubeAPIURL, o.kubeConfigFile)
	if err != nil {
		return err
	}
	cfg.Timeout = 5 * time.Second
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	node, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if node.Spec.PodCIDR == "" {
		return fmt.Errorf("node %s has no podCIDR yet", nodeName)
	}
	_, err = client.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
	return err
}

// flannelRun: flannel main.go's main from the subnet manager on, for the kube subnet
// manager, IPv4/IPv6 as the network config says, and iptables rules. Returns nil once
// ctx is cancelled, an error if the network cannot be set up.
func flannelRun(ctx context.Context, o *flannelOptions, ready *atomic.Bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sm, err := kube.NewSubnetManager(ctx, o.kubeAPIURL, o.kubeConfigFile, o.kubeAnnotationPrefix,
		o.netConfPath, o.setNodeNetUnavail)
	if err != nil {
		return fmt.Errorf("subnet manager: %w", err)
	}
	config, err := sm.GetNetworkConfig(ctx)
	if err != nil {
		return fmt.Errorf("network config: %w", err)
	}
	if config.EnableNFTables {
		return errors.New("EnableNFTables: flannel's nftables mode is not linked into kubelite")
	}
	ipStack, err := ipmatch.GetIPFamily(config.EnableIPv4, config.EnableIPv6)
	if err != nil {
		return err
	}
	// As upstream: without br_netfilter bridged pod traffic bypasses iptables.
	if config.EnableIPv4 {
		if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
			return fmt.Errorf("br_netfilter: %w", err)
		}
	}
	publicIP := o.publicIP
	if stored, _ := sm.GetStoredPublicIP(ctx); stored != "" {
		publicIP = stored
	}
	publicOpts := ipmatch.PublicIPOpts{PublicIP: publicIP}
	var extIface *backend.ExternalInterface
	if len(o.iface) == 0 {
		extIface, err = ipmatch.LookupExtIface(publicIP, "", "", ipStack, publicOpts)
	}
	for _, iface := range o.iface {
		if extIface, err = ipmatch.LookupExtIface(iface, "", "", ipStack, publicOpts); extIface != nil {
			break
		}
		klog.InfoS("flanneld: no usable interface", "iface", iface, "err", err)
	}
	if extIface == nil {
		return fmt.Errorf("no interface matches --iface %v / --public-ip %q: %v", o.iface, publicIP, err)
	}

	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (deferred later, so it runs first)
	defer cancel()
	be, err := backend.NewManager(ctx, sm, extIface).GetBackend(config.BackendType)
	if err != nil {
		return fmt.Errorf("backend %s (only vxlan is linked): %w", config.BackendType, err)
	}
	bn, err := be.RegisterNetwork(ctx, &wg, config)
	if err != nil {
		return fmt.Errorf("registering the network: %w", err)
	}
	rules := &iptables.IPTablesManager{}
	if err := rules.Init(ctx); err != nil {
		return err
	}
	if o.ipMasq {
		prevNetwork := ReadCIDRFromSubnetFile(o.subnetFile, "FLANNEL_NETWORK")
		prevSubnet := ReadCIDRFromSubnetFile(o.subnetFile, "FLANNEL_SUBNET")
		prevIPv6Network := ReadIP6CIDRFromSubnetFile(o.subnetFile, "FLANNEL_IPV6_NETWORK")
		prevIPv6Subnet := ReadIP6CIDRFromSubnetFile(o.subnetFile, "FLANNEL_IPV6_SUBNET")
		if err := rules.SetupAndEnsureMasqRules(ctx, config.Network, prevSubnet, prevNetwork,
			config.IPv6Network, prevIPv6Subnet, prevIPv6Network, bn.Lease(), o.iptablesResync,
			o.ipMasqRandomFullyOff); err != nil {
			return fmt.Errorf("masquerade rules: %w", err)
		}
	}
	if o.iptablesForwardRules {
		rules.SetupAndEnsureForwardRules(ctx, config.Network, config.IPv6Network, o.iptablesResync)
	}
	if err := sm.HandleSubnetFile(o.subnetFile, config, o.ipMasq, bn.Lease().Subnet,
		bn.Lease().IPv6Subnet, bn.MTU()); err != nil {
		return fmt.Errorf("writing %s: %w", o.subnetFile, err)
	}
	ready.Store(true)
	klog.InfoS("flanneld: ready", "subnetFile", o.subnetFile, "backend", config.BackendType)
	wg.Add(1)
	go func() { defer wg.Done(); bn.Run(ctx) }()
	// The kube subnet manager's CompleteLease only starts its goroutines; upstream's main
	// then waits for them, that is until it is stopped.
	if err := sm.CompleteLease(ctx, bn.Lease(), &wg); err != nil {
		return fmt.Errorf("completing the lease: %w", err)
	}
	<-ctx.Done()
	return nil
}

// serveHealth serves upstream's /healthz (alive) and /readyz (subnet file written and
// rules in place) on address, on a mux of its own (kubelite's other parts share the
// process). Returns a function that stops the server.
func serveHealth(address string, ready *atomic.Bool) (func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("flanneld is running"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "flanneld is not ready yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("flanneld is ready"))
	})
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return nil, err
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = server.Serve(listener) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = server.Shutdown(ctx)
	}, nil
}

// waitUntil polls check every 2 s until it returns nil (true) or ctx ends (false),
// logging why it waits at the first failure and every 30 s after.
func waitUntil(ctx context.Context, part string, check func(context.Context) error) bool {
	var lastLog time.Time
	for {
		err := check(ctx)
		if err == nil {
			return true
		}
		if time.Since(lastLog) > 30*time.Second {
			klog.InfoS("kubelite: part waits to start", "part", part, "reason", err.Error())
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(2 * time.Second):
		}
	}
}

// ReadCIDRFromSubnetFile: the IPv4 network under key in an earlier run's subnet file
// (flannel main.go's function of that name: the rules of a changed network are then
// replaced); the zero network if the file or key is missing or holds not exactly one.
func ReadCIDRFromSubnetFile(path, key string) ip.IP4Net {
	if nets := subnetFileCIDRs(path, key); len(nets) == 1 {
		return ip.FromIPNet(nets[0])
	}
	return ip.IP4Net{}
}

// ReadIP6CIDRFromSubnetFile: as ReadCIDRFromSubnetFile, for an IPv6 network.
func ReadIP6CIDRFromSubnetFile(path, key string) ip.IP6Net {
	if nets := subnetFileCIDRs(path, key); len(nets) == 1 {
		return ip.FromIP6Net(nets[0])
	}
	return ip.IP6Net{IP: (*ip.IP6)(big.NewInt(0))}
}

// subnetFileCIDRs: the comma-separated CIDRs of KEY=VALUE in a subnet file.
func subnetFileCIDRs(path, key string) []*net.IPNet {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var nets []*net.IPNet
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || k != key {
			continue
		}
		for _, cidr := range strings.Split(v, ",") {
			if _, n, err := net.ParseCIDR(strings.TrimSpace(cidr)); err == nil {
				nets = append(nets, n)
			}
		}
	}
	return nets
}
