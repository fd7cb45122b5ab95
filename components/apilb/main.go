// apilb: the node-local API load balancer of a microkube worker.
//
// It listens on loopback (the API server port, 127.0.0.1:16443 as MicroK8s's
// apiserver-proxy does) and pipes each TCP connection to one of the cluster's API
// servers, so TLS passes through and the API servers' own certificates (whose SANs hold
// 127.0.0.1) are what the kubelet, kube-proxy, flannel and netpol verify. It
//   - starts from the saved list of API servers (--servers-file), with the join address
//     (--fallback) as a last resort;
//   - learns the list from the `kubernetes` Service's EndpointSlices every
//     --refresh-interval, and saves it atomically, never empty;
//   - checks every server's /readyz every --check-interval; a server that fails two
//     checks in a row (or refuses a connection) is left, and the connections that went
//     to it are closed, so clients re-establish their watches on a live one;
//   - writes which server is in use to --state-file (JSON) on every change.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

var version = "dev"

type options struct {
	listen, serversFile, fallback, kubeconfig, stateFile string
	checkInterval, checkTimeout, refreshInterval         time.Duration
}

func parseFlags(args []string) (options, bool, error) {
	var o options
	var showVersion bool
	fs := flag.NewFlagSet("apilb", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:16443", "loopback address to serve on")
	fs.StringVar(&o.serversFile, "servers-file", "", "the saved list of API servers (JSON), read at start and kept up to date")
	fs.StringVar(&o.fallback, "fallback", "", "host:port of the API server the node joined through (a last resort)")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig with the credential for health checks and the list (embedded data)")
	fs.StringVar(&o.stateFile, "state-file", "", "where to write which API server is in use (JSON)")
	fs.DurationVar(&o.checkInterval, "check-interval", time.Second, "how often each API server is checked")
	fs.DurationVar(&o.checkTimeout, "check-timeout", time.Second, "how long one check may take")
	fs.DurationVar(&o.refreshInterval, "refresh-interval", 5*time.Second, "how often the list of API servers is asked for")
	fs.BoolVar(&showVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return o, false, err
	}
	if showVersion {
		return o, true, nil
	}
	if o.serversFile == "" || o.kubeconfig == "" || o.stateFile == "" {
		return o, false, fmt.Errorf("--servers-file, --kubeconfig and --state-file are required")
	}
	if o.checkInterval <= 0 || o.checkTimeout <= 0 || o.refreshInterval <= 0 {
		return o, false, fmt.Errorf("intervals and timeouts must be positive")
	}
	return o, false, nil
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	o, showVersion, err := parseFlags(os.Args[1:])
	if showVersion {
		fmt.Printf("apilb %s\n", version)
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "apilb: %v\n", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "apilb: %v\n", err)
		os.Exit(1)
	}
}

func run(o options) error {
	cred, err := ReadKubeconfig(o.kubeconfig)
	if err != nil {
		return err
	}
	api := NewAPI(cred)
	saved := ReadServers(o.serversFile)
	b := NewBalancer(saved, o.fallback)
	if len(b.Snapshot().Servers) == 0 {
		return fmt.Errorf("no API server known: %s is empty and no --fallback was given", o.serversFile)
	}
	if len(saved) == 0 {
		if err := WriteServers(o.serversFile, b.Snapshot().Servers); err != nil {
			return err
		}
	}
	b.OnChange = func(s Snapshot) {
		if err := WriteState(o.stateFile, s); err != nil {
			log.Printf("writing %s: %v", o.stateFile, err)
		}
	}
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	log.Printf("apilb %s on %s over %v (fallback %q)", version, o.listen, b.Snapshot().Servers, o.fallback)

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	go b.CheckLoop(ctx, api.Ready, o.checkInterval, o.checkTimeout)
	go refreshLoop(ctx, b, api, o)
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	// The state file exists from the start, so its presence means the balancer serves.
	b.notify(b.Snapshot())
	if err := b.Serve(l); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// refreshLoop asks a live API server for the list of API servers every refresh interval
// and saves a changed list.
func refreshLoop(ctx context.Context, b *Balancer, api *API, o options) {
	ticker := time.NewTicker(o.refreshInterval)
	defer ticker.Stop()
	for {
		for _, addr := range b.candidates() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			servers, err := api.APIServers(cctx, addr)
			cancel()
			if err != nil {
				continue
			}
			if b.SetServers(servers) {
				log.Printf("API servers now %v", servers)
				if err := WriteServers(o.serversFile, servers); err != nil {
					log.Printf("saving the list: %v", err)
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}
