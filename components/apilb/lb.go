package main

// The balancer itself: which API servers there are, which of them answer, which one new
// connections go to, and the connections that went to each, so a server that dies takes
// its connections with it (clients see the close and re-establish their watches).
//
// Learned from k3s's agent load balancer (pkg/agent/loadbalancer: a sticky "current"
// server, health checks per server, connections to a failed server closed); written anew.

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"sort"
	"sync"
	"time"
)

// Checker reports whether the API server at addr (host:port) serves; nil means healthy.
type Checker func(ctx context.Context, addr string) error

type backend struct {
	healthy bool
	fails   int // consecutive failed checks
	conns   map[net.Conn]struct{}
}

// Balancer spreads nothing: it keeps one current server while that one is healthy (as
// k3s does), so a client's watches and requests see one API server's view.
type Balancer struct {
	mu       sync.Mutex
	servers  []string // the learned list, never empty once set
	fallback string   // the join address: tried last, whatever the list says
	backends map[string]*backend
	current  string
	switches int
	switched time.Time

	// FailAfter consecutive failed checks mark a server down (1 s apart: down within ~2 s).
	FailAfter   int
	DialTimeout time.Duration
	// OnChange is called (without the lock held) after the list, the health or the
	// current server changed: the state file is rewritten.
	OnChange func(Snapshot)
}

// Snapshot is what the state file and the status show.
type Snapshot struct {
	Current  string   `json:"current"`
	Servers  []string `json:"servers"`
	Healthy  []string `json:"healthy"`
	Fallback string   `json:"fallback,omitempty"`
	Switches int      `json:"switches"`
	// Unix seconds (fractional) of the last switch of the current server, 0 if none yet.
	SwitchedAt float64 `json:"switched_at"`
}

// NewBalancer starts from servers (the saved list; may be empty) and fallback (the join
// address, "" for none). Every server counts as healthy until a check says otherwise.
func NewBalancer(servers []string, fallback string) *Balancer {
	b := &Balancer{fallback: fallback, backends: map[string]*backend{}, FailAfter: 2,
		DialTimeout: 2 * time.Second}
	b.setServersLocked(servers)
	if len(b.servers) == 0 && fallback != "" {
		b.setServersLocked([]string{fallback})
	}
	b.chooseLocked()
	return b
}

func (b *Balancer) entry(addr string) *backend {
	be, ok := b.backends[addr]
	if !ok {
		be = &backend{healthy: true, conns: map[net.Conn]struct{}{}}
		b.backends[addr] = be
	}
	return be
}

func (b *Balancer) setServersLocked(servers []string) bool {
	seen := map[string]bool{}
	list := []string{}
	for _, s := range servers {
		if s != "" && !seen[s] {
			seen[s] = true
			list = append(list, s)
		}
	}
	if len(list) == 0 {
		return false // never empty: an empty answer keeps what we knew
	}
	sort.Strings(list)
	if equal(list, b.servers) {
		return false
	}
	b.servers = list
	for _, s := range list {
		b.entry(s)
	}
	if b.current != "" && !seen[b.current] && b.current != b.fallback {
		// The current server left the cluster: new connections go elsewhere; the open
		// ones stay until it fails (it may still serve while it is removed).
		b.current = ""
	}
	return true
}

// SetServers replaces the list with servers; an empty list is ignored. It returns true
// when the list changed.
func (b *Balancer) SetServers(servers []string) bool {
	b.mu.Lock()
	changed := b.setServersLocked(servers)
	if changed {
		b.chooseLocked()
	}
	snap := b.snapshotLocked()
	b.mu.Unlock()
	if changed {
		b.notify(snap)
	}
	return changed
}

// Servers returns the current list and the fallback, for the health checker.
func (b *Balancer) targets() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := append([]string{}, b.servers...)
	if b.fallback != "" && !contains(out, b.fallback) {
		out = append(out, b.fallback)
	}
	return out
}

// candidates is the order a new connection tries servers in: the current one, the other
// healthy ones, then the unhealthy ones (a check may lag), then the fallback.
func (b *Balancer) candidates() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var healthy, down []string
	if b.current != "" && b.entry(b.current).healthy {
		healthy = append(healthy, b.current)
	}
	for _, s := range b.servers {
		if s == b.current && b.entry(s).healthy {
			continue
		}
		if b.entry(s).healthy {
			healthy = append(healthy, s)
		} else {
			down = append(down, s)
		}
	}
	out := append(healthy, down...)
	if b.fallback != "" && !contains(out, b.fallback) {
		out = append(out, b.fallback)
	}
	return out
}

// chooseLocked keeps the current server while it is healthy, else takes the first
// healthy one of the list.
func (b *Balancer) chooseLocked() {
	if b.current != "" && b.entry(b.current).healthy &&
		(contains(b.servers, b.current) || b.current == b.fallback) {
		return
	}
	next := ""
	for _, s := range b.servers {
		if b.entry(s).healthy {
			next = s
			break
		}
	}
	if next == "" && b.fallback != "" && b.entry(b.fallback).healthy {
		next = b.fallback
	}
	if next != b.current && next != "" {
		if b.current != "" {
			log.Printf("switching from %s to %s", b.current, next)
		} else {
			log.Printf("using %s", next)
		}
		b.current = next
		b.switches++
		b.switched = time.Now()
	}
}

// Report records one health check of addr: err nil for a server that serves.
func (b *Balancer) Report(addr string, err error) {
	b.mu.Lock()
	be := b.entry(addr)
	was := be.healthy
	if err == nil {
		be.fails = 0
		be.healthy = true
	} else {
		be.fails++
		if be.fails >= b.FailAfter {
			be.healthy = false
		}
	}
	var doomed []net.Conn
	if was && !be.healthy {
		log.Printf("%s is down (%v); closing its %d connections", addr, err, len(be.conns))
		for c := range be.conns {
			doomed = append(doomed, c)
		}
	} else if !was && be.healthy {
		log.Printf("%s is up again", addr)
	}
	changed := was != be.healthy
	before := b.current
	if changed {
		b.chooseLocked()
	}
	snap := b.snapshotLocked()
	b.mu.Unlock()
	for _, c := range doomed {
		_ = c.Close()
	}
	if changed || before != snap.Current {
		b.notify(snap)
	}
}

func (b *Balancer) notify(s Snapshot) {
	if b.OnChange != nil {
		b.OnChange(s)
	}
}

func (b *Balancer) snapshotLocked() Snapshot {
	s := Snapshot{Current: b.current, Servers: append([]string{}, b.servers...),
		Healthy: []string{}, Fallback: b.fallback, Switches: b.switches}
	if !b.switched.IsZero() {
		s.SwitchedAt = float64(b.switched.UnixNano()) / 1e9
	}
	for _, addr := range append(append([]string{}, b.servers...), b.fallback) {
		if be, ok := b.backends[addr]; ok && be.healthy && !contains(s.Healthy, addr) {
			s.Healthy = append(s.Healthy, addr)
		}
	}
	return s
}

// Snapshot returns the balancer's state now.
func (b *Balancer) Snapshot() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.snapshotLocked()
}

// Current is the server new connections go to ("" before the first one).
func (b *Balancer) Current() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.current
}

// Dial connects to the first candidate that accepts; a refused dial counts as a failed
// check, so a dead server is left at once instead of at its next check.
func (b *Balancer) Dial(ctx context.Context) (net.Conn, string, error) {
	var lastErr error = errors.New("no API server known")
	for _, addr := range b.candidates() {
		d := net.Dialer{Timeout: b.DialTimeout, KeepAlive: 15 * time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			lastErr = err
			b.Report(addr, err)
			b.Report(addr, err) // refused outright: no need to wait for a second check
			continue
		}
		b.mu.Lock()
		b.entry(addr).conns[conn] = struct{}{}
		moved := b.current != addr && (b.current == "" || !b.entry(b.current).healthy)
		if moved {
			b.current = addr
			b.switches++
			b.switched = time.Now()
		}
		snap := b.snapshotLocked()
		b.mu.Unlock()
		if moved {
			b.notify(snap)
		}
		return conn, addr, nil
	}
	return nil, "", lastErr
}

func (b *Balancer) forget(addr string, conn net.Conn) {
	b.mu.Lock()
	if be, ok := b.backends[addr]; ok {
		delete(be.conns, conn)
	}
	b.mu.Unlock()
}

// Serve accepts connections on l until it is closed, piping each to a server.
func (b *Balancer) Serve(l net.Listener) error {
	for {
		client, err := l.Accept()
		if err != nil {
			return err
		}
		go b.handle(client)
	}
}

func (b *Balancer) handle(client net.Conn) {
	defer client.Close()
	server, addr, err := b.Dial(context.Background())
	if err != nil {
		log.Printf("no API server answers: %v", err)
		return
	}
	defer b.forget(addr, server)
	defer server.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close so the other side sees the end; the second direction ends the pair.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	// One side ended: wait briefly for the other, then drop both (a dead server's
	// connection is closed by Report, which ends both copies at once).
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// CheckLoop checks every server every interval, each check bounded by timeout, until ctx ends.
func (b *Balancer) CheckLoop(ctx context.Context, check Checker, interval, timeout time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		var wg sync.WaitGroup
		for _, addr := range b.targets() {
			wg.Add(1)
			go func(addr string) {
				defer wg.Done()
				cctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				b.Report(addr, check(cctx, addr))
			}(addr)
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
