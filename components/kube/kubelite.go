// kubelite: the node's Kubernetes daemons in one Go process, as MicroK8s's
// kubelite runs them, but without patching upstream: each daemon is upstream's
// own cobra command, given the arguments microkube read from its file in args/.
// The pod network (flanneld) and NetworkPolicy enforcement (netpol) run here too,
// as k3s runs them in its one process, so their client-go code is not mapped twice.
//
// The API server starts first. The kubelet starts once the API server serves
// everything but its RBAC and priority-class bootstrap (see kubeletReadyz); the
// other daemons start once it answers /readyz, so none of them spends its first
// seconds in a retry backoff. When
// any daemon returns, the process writes which one to the spec's failed_file
// and exits non-zero: its supervisor (microkube's, or snapd) restarts it whole.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	_ "unsafe" // go:linkname

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/component-base/cli"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/version"
	"k8s.io/klog/v2"
)

const kubeliteName = "kubelite"

// Each upstream daemon installs its SIGTERM handler through
// k8s.io/apiserver/pkg/server.SetupSignalContext, which allows one call per
// process (it closes this channel). kubelite gives every daemon a fresh one,
// starting the daemons one at a time so no two calls race; each daemon then
// receives SIGTERM itself and shuts down as it would alone.
//
//go:linkname onlyOneSignalHandler k8s.io/apiserver/pkg/server.onlyOneSignalHandler
var onlyOneSignalHandler chan struct{}

// startOrder: the API server first. The daemons that set up their signal
// handler while they start come next, each waited for; the controller-manager
// sets it up only with a feature gate on, so it comes last and is not waited for.
// flanneld and netpol (flannel.go, netpol.go) set up no such handler and are not
// waited for: each waits in its own goroutine until its Node and RBAC are there.
var startOrder = []string{"kube-apiserver", "kubelet", "kube-scheduler", "kube-proxy", "flanneld", "netpol",
	"kube-controller-manager"}

// callsSetupSignal: the daemons that always call SetupSignalContext while starting.
var callsSetupSignal = map[string]bool{"kube-apiserver": true, "kubelet": true, "kube-scheduler": true}

// needsRBAC: the daemons authorized by RBAC roles, which the API server creates in
// its rbac/bootstrap-roles post-start hook; they start once /readyz is ok.
var needsRBAC = map[string]bool{"kube-scheduler": true, "kube-proxy": true, "kube-controller-manager": true}

// kubeletReadyz: /readyz without the two bootstrap hooks the kubelet does not need.
// On a fresh datastore they write ~150 default roles, bindings and priority classes
// one at a time (2-3 s). The kubelet is authorized by the Node authorizer, whose
// rules are compiled in (plugin/pkg/auth/authorizer/node), not by those roles, so
// it can register its Node while they are written.
const kubeletReadyz = "/readyz?exclude=poststarthook/rbac/bootstrap-roles" +
	"&exclude=poststarthook/scheduling/bootstrap-system-priority-classes"

const (
	apiReadyTimeout  = 5 * time.Minute
	signalSetupLimit = time.Minute
	stopGrace        = 8 * time.Second
)

type kubeliteSpec struct {
	// Parts: daemon name -> its arguments (without the program name).
	Parts map[string][]string `json:"parts"`
	// ReadyKubeconfig: credentials to ask the API server for /readyz.
	ReadyKubeconfig string `json:"ready_kubeconfig"`
	// FailedFile: where the name of the daemon that ended the process is written.
	FailedFile string `json:"failed_file"`
	// RuntimeSocket: the container runtime's socket; the kubelet starts once it accepts,
	// so kubelite itself need not wait for the runtime before starting the API server.
	RuntimeSocket string `json:"runtime_socket"`
}

type partExit struct {
	name string
	err  error
}

func runKubelite(args []string) int {
	if len(args) == 1 && args[0] == "--version" {
		fmt.Printf("Kubernetes %s (kubelite)\n", version.Get().GitVersion)
		return 0
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: kube kubelite SPEC.json")
		return 2
	}
	spec, err := readSpec(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "kubelite: %v\n", err)
		return 2
	}
	_ = os.Remove(spec.FailedFile)
	// A part that calls klog.Fatal (kube-router's policy controller does when iptables
	// fails, flannel on a bad subnet lease) ends the process there. klog does not say
	// which part it was: the calling goroutine's stack does.
	klog.OsExit = func(code int) {
		stack := make([]byte, 64<<10)
		stack = stack[:runtime.Stack(stack, false)]
		writeFailed(spec, partOfStack(string(stack)),
			fmt.Sprintf("logged a fatal error (exit code %d): see kubelite's log", code))
		os.Exit(code)
	}
	// Every daemon applies its logging options; the same options twice are fine.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged

	stop := make(chan os.Signal, 2)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	exits := make(chan partExit, len(spec.Parts))
	start := func(name string) {
		onlyOneSignalHandler = make(chan struct{})
		cmd := components[name]() // the API server sets up its handler here
		cmd.SetArgs(spec.Parts[name])
		klog.InfoS("kubelite: starting", "part", name)
		go func() { exits <- partExit{name, runPart(cmd)} }()
	}

	_, withAPIServer := spec.Parts["kube-apiserver"]
	apiFullyReady := !withAPIServer
	for _, name := range ordered(spec.Parts) {
		if name == "kubelet" && spec.RuntimeSocket != "" {
			if code, done := waitFor(name, socketAccepts(spec.RuntimeSocket), apiReadyTimeout, exits, stop, spec); done {
				return code
			}
		}
		if needsRBAC[name] && !apiFullyReady {
			if code, done := waitFor("kube-apiserver", apiReady(spec.ReadyKubeconfig, "/readyz"), apiReadyTimeout, exits, stop, spec); done {
				return code
			}
			apiFullyReady = true
		}
		start(name)
		if name == "kube-apiserver" {
			if code, done := waitFor(name, apiReady(spec.ReadyKubeconfig, kubeletReadyz), apiReadyTimeout, exits, stop, spec); done {
				return code
			}
		} else if callsSetupSignal[name] {
			if code, done := waitFor(name, signalSetUp, signalSetupLimit, exits, stop, spec); done {
				return code
			}
		}
	}
	klog.InfoS("kubelite: all parts started", "parts", len(spec.Parts))
	// releaseStartupPages: components/pageout (components.yaml `shared`).
	time.AfterFunc(startupPagesSettle, func() {
		settleGC()
		klog.InfoS("kubelite: released start-up code pages", "mappedMiB", releaseStartupPages()>>20)
	})
	select {
	case e := <-exits:
		return failed(spec, e)
	case <-stop:
		return stopping(exits)
	}
}

func readSpec(path string) (*kubeliteSpec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var spec kubeliteSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for name := range spec.Parts {
		if _, ok := components[name]; !ok {
			return nil, fmt.Errorf("%s: unknown part %q", path, name)
		}
	}
	if len(spec.Parts) == 0 || spec.FailedFile == "" {
		return nil, fmt.Errorf("%s: needs parts and failed_file", path)
	}
	return &spec, nil
}

func ordered(parts map[string][]string) []string {
	rank := map[string]int{}
	for i, n := range startOrder {
		rank[n] = i
	}
	out := make([]string, 0, len(parts))
	for n := range parts {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return rank[out[i]] < rank[out[j]] })
	return out
}

// runPart runs one daemon's command as its own binary would (cli.Run), and
// returns when the daemon ends.
func runPart(cmd *cobra.Command) error {
	return cli.RunNoErrOutput(cmd)
}

func signalSetUp() bool {
	select {
	case <-onlyOneSignalHandler:
		return true
	default:
		return false
	}
}

// apiReady: true once the API server answers path (/readyz, maybe with exclusions) with ok.
func apiReady(kubeconfig, path string) func() bool {
	var client kubernetes.Interface
	return func() bool {
		if client == nil {
			cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				return false
			}
			cfg.Timeout = time.Second
			if client, err = kubernetes.NewForConfig(cfg); err != nil {
				client = nil
				return false
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req := client.Discovery().RESTClient().Get()
		base, query, _ := strings.Cut(path, "?")
		req = req.AbsPath(base)
		for _, kv := range strings.Split(query, "&") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				req = req.Param(k, v)
			}
		}
		body, err := req.DoRaw(ctx)
		return err == nil && string(body) == "ok"
	}
}

// socketAccepts: true once the unix socket at path accepts a connection.
func socketAccepts(path string) func() bool {
	return func() bool {
		conn, err := net.DialTimeout("unix", path, time.Second)
		if err != nil {
			return false
		}
		_ = conn.Close()
		return true
	}
}

// waitFor polls cond until it holds (done=false), or until a part exits, a
// signal arrives or the limit passes (done=true, with the exit code).
func waitFor(name string, cond func() bool, limit time.Duration, exits chan partExit,
	stop chan os.Signal, spec *kubeliteSpec) (int, bool) {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case e := <-exits:
			return failed(spec, e), true
		case <-stop:
			return stopping(exits), true
		case <-tick.C:
			if time.Now().After(deadline) {
				return failed(spec, partExit{name, fmt.Errorf("not started within %s", limit)}), true
			}
		}
	}
	return 0, false
}

// failed records which part ended the process, for `microkube status`.
func failed(spec *kubeliteSpec, e partExit) int {
	reason := "exited"
	if e.err != nil {
		reason = e.err.Error()
	}
	klog.ErrorS(e.err, "kubelite: a part ended; exiting so the whole process restarts", "part", e.name)
	klog.Flush()
	writeFailed(spec, e.name, reason)
	return 1
}

// stackPackages: import-path prefixes by which a goroutine's stack shows the part it
// runs. The API server's library (k8s.io/apiserver) is last: every part serves its
// health endpoints with it, but only the API server runs its storage and handlers alone.
var stackPackages = []struct{ prefix, part string }{
	{"github.com/cloudnativelabs/kube-router/", "netpol"},
	{"github.com/flannel-io/flannel/", "flanneld"},
	{"main.runFlannel", "flanneld"},
	{"k8s.io/kubernetes/cmd/kubelet/", "kubelet"},
	{"k8s.io/kubernetes/pkg/kubelet/", "kubelet"},
	{"k8s.io/kubernetes/cmd/kube-proxy/", "kube-proxy"},
	{"k8s.io/kubernetes/pkg/proxy/", "kube-proxy"},
	{"k8s.io/kubernetes/cmd/kube-scheduler/", "kube-scheduler"},
	{"k8s.io/kubernetes/pkg/scheduler/", "kube-scheduler"},
	{"k8s.io/kubernetes/cmd/kube-controller-manager/", "kube-controller-manager"},
	{"k8s.io/kubernetes/pkg/controller/", "kube-controller-manager"},
	{"k8s.io/kubernetes/cmd/kube-apiserver/", "kube-apiserver"},
	{"k8s.io/kubernetes/pkg/controlplane/", "kube-apiserver"},
	{"k8s.io/apiserver/", "kube-apiserver"},
}

// partOfStack names the part whose code is nearest the top of a goroutine's stack
// (runtime.Stack's text: a function line, then its file line, innermost first), or
// "a part" when no frame names one.
func partOfStack(stack string) string {
	for _, line := range strings.Split(stack, "\n") {
		if strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "k8s.io/klog/") {
			continue // a file line, or klog's own frames
		}
		for _, p := range stackPackages {
			if strings.HasPrefix(line, p.prefix) {
				return p.part
			}
		}
	}
	return "a part"
}

func writeFailed(spec *kubeliteSpec, name, reason string) {
	tmp := filepath.Join(filepath.Dir(spec.FailedFile), "."+filepath.Base(spec.FailedFile)+".tmp")
	if err := os.WriteFile(tmp, []byte(name+"\n"+reason+"\n"), 0o644); err == nil {
		_ = os.Rename(tmp, spec.FailedFile)
	}
}

// stopping: each daemon got the signal too and shuts down; give them a little while.
// flanneld and netpol stop at once, so the wait is for a Kubernetes daemon.
func stopping(exits chan partExit) int {
	klog.InfoS("kubelite: stopping")
	grace := time.After(stopGrace)
	for waiting := true; waiting; {
		select {
		case e := <-exits:
			if !quickToStop[e.name] { // the first to finish its shutdown; the rest are ending too
				time.Sleep(500 * time.Millisecond)
				waiting = false
			}
		case <-grace:
			waiting = false
		}
	}
	klog.Flush()
	return 0
}

// quickToStop: the parts that end as soon as they get the signal (flannel.go, netpol.go).
var quickToStop = map[string]bool{"flanneld": true, "netpol": true}

// settleGC lowers the GC target once the node has settled, to KUBELITE_IDLE_GOGC percent.
// While the parts start, the GOGC the process was started with applies: a low target
// then makes the collector run through every allocation burst of start-up and delays
// Ready; at idle the heap barely grows, so a low target costs little CPU and keeps the
// heap small.
func settleGC() {
	idle, err := strconv.Atoi(os.Getenv("KUBELITE_IDLE_GOGC"))
	if err != nil || idle <= 0 {
		return
	}
	previous := debug.SetGCPercent(idle)
	// One collection now, and the freed heap back to the kernel, rather than waiting for
	// the scavenger to return what start-up grew.
	debug.FreeOSMemory()
	klog.InfoS("kubelite: settled GC target", "gogc", idle, "startGOGC", previous)
}
