package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServer answers each line with "<name>:<line>" until it is killed.
type fakeServer struct {
	name  string
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startFake(t *testing.T, name string) *fakeServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{name: name, l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go func() {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					_, _ = c.Write([]byte(s.name + ":" + line))
				}
			}()
		}
	}()
	t.Cleanup(s.kill)
	return s
}

func (s *fakeServer) addr() string { return s.l.Addr().String() }

// kill stops accepting but leaves established connections open and silent, as a host
// that lost power does (no FIN, no RST): only the balancer's close ends them.
func (s *fakeServer) kill() { s.l.Close() }

func tcpCheck(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	return c.Close()
}

func ask(t *testing.T, c net.Conn, line string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return strings.TrimSpace(got)
}

func startBalancer(t *testing.T, servers []string, fallback string) (*Balancer, string) {
	t.Helper()
	b := NewBalancer(servers, fallback)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); l.Close() })
	go b.CheckLoop(ctx, tcpCheck, 100*time.Millisecond, 200*time.Millisecond)
	go func() { _ = b.Serve(l) }()
	return b, l.Addr().String()
}

func TestFailoverClosesConnectionsToTheDeadServer(t *testing.T) {
	servers := []*fakeServer{startFake(t, "a"), startFake(t, "b"), startFake(t, "c")}
	byAddr := map[string]*fakeServer{}
	var addrs []string
	for _, s := range servers {
		byAddr[s.addr()] = s
		addrs = append(addrs, s.addr())
	}
	b, lb := startBalancer(t, addrs, "")

	c, err := net.Dial("tcp", lb)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := ask(t, c, "hi")
	first := byAddr[b.Current()]
	if first == nil || got != first.name+":hi" {
		t.Fatalf("first answer %q, current %q", got, b.Current())
	}

	killed := time.Now()
	first.kill()
	// The open connection is closed by the balancer (the fake server never closes it).
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
		t.Fatal("the connection to the dead server stayed open")
	}
	if took := time.Since(killed); took > 5*time.Second {
		t.Fatalf("closed after %v, want within 5 s", took)
	}
	// New connections go to a live server, which is now the current one.
	c2, err := net.Dial("tcp", lb)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	got = ask(t, c2, "again")
	if strings.HasPrefix(got, first.name+":") || !strings.HasSuffix(got, ":again") {
		t.Fatalf("after the loss: %q", got)
	}
	snap := b.Snapshot()
	if snap.Current == first.addr() || snap.Switches < 2 {
		t.Fatalf("snapshot after failover: %+v", snap)
	}
	for _, h := range snap.Healthy {
		if h == first.addr() {
			t.Fatalf("dead server still healthy: %+v", snap)
		}
	}
}

func TestRefusedDialFailsOverAtOnce(t *testing.T) {
	dead := startFake(t, "dead")
	live := startFake(t, "live")
	dead.kill()
	b := NewBalancer([]string{dead.addr(), live.addr()}, "")
	conn, addr, err := b.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if addr != live.addr() || b.Current() != live.addr() {
		t.Fatalf("dialled %s (current %s), want the live %s", addr, b.Current(), live.addr())
	}
}

func TestFallbackIsTheLastResort(t *testing.T) {
	dead := startFake(t, "dead")
	join := startFake(t, "join")
	dead.kill()
	b := NewBalancer([]string{dead.addr()}, join.addr())
	if got := b.candidates(); len(got) != 2 || got[1] != join.addr() {
		t.Fatalf("candidates %v: the join address must come last", got)
	}
	_, addr, err := b.Dial(context.Background())
	if err != nil || addr != join.addr() {
		t.Fatalf("dial: %s %v", addr, err)
	}
	// No saved list at all: the join address alone.
	if s := NewBalancer(nil, join.addr()).Snapshot().Servers; len(s) != 1 || s[0] != join.addr() {
		t.Fatalf("servers from the fallback alone: %v", s)
	}
}

func TestListIsNeverEmptied(t *testing.T) {
	b := NewBalancer([]string{"10.0.0.2:16443", "10.0.0.1:16443"}, "")
	if b.SetServers(nil) || b.SetServers([]string{""}) {
		t.Fatal("an empty list replaced the known one")
	}
	if s := b.Snapshot().Servers; len(s) != 2 || s[0] != "10.0.0.1:16443" {
		t.Fatalf("servers %v", s)
	}
	if !b.SetServers([]string{"10.0.0.3:16443"}) || b.SetServers([]string{"10.0.0.3:16443"}) {
		t.Fatal("a new list must replace the old one once")
	}

	path := filepath.Join(t.TempDir(), "api-servers.json")
	if err := WriteServers(path, nil); err == nil {
		t.Fatal("an empty list was saved")
	}
	if err := WriteServers(path, []string{"10.0.0.3:16443"}); err != nil {
		t.Fatal(err)
	}
	if got := ReadServers(path); len(got) != 1 || got[0] != "10.0.0.3:16443" {
		t.Fatalf("read back %v", got)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestParseSlices(t *testing.T) {
	body := []byte(`{"items":[{"endpoints":[
	  {"addresses":["10.0.0.2"],"conditions":{"ready":true}},
	  {"addresses":["10.0.0.1"]},
	  {"addresses":["10.0.0.9"],"conditions":{"ready":false}}],
	  "ports":[{"name":"https","port":16443,"protocol":"TCP"}]}]}`)
	got, err := ParseSlices(body)
	if err != nil || strings.Join(got, ",") != "10.0.0.1:16443,10.0.0.2:16443" {
		t.Fatalf("ParseSlices: %v %v", got, err)
	}
	if _, err := ParseSlices([]byte(`{"items":[]}`)); err == nil {
		t.Fatal("an empty list must be an error, never an empty list")
	}
}

func TestFlags(t *testing.T) {
	if _, _, err := parseFlags([]string{"--listen", "127.0.0.1:1"}); err == nil {
		t.Fatal("missing files accepted")
	}
	o, _, err := parseFlags([]string{"--servers-file", "s", "--kubeconfig", "k", "--state-file", "x",
		"--check-interval", "500ms"})
	if err != nil || o.checkInterval != 500*time.Millisecond || o.listen != "127.0.0.1:16443" {
		t.Fatalf("%+v %v", o, err)
	}
}
