// Command dashboard is microkube's web dashboard: nodes, pods, logs, events and addons.
//
// It holds no credentials of its own that grant anything. A user signs in with a
// Kubernetes bearer token; the dashboard checks it with a SelfSubjectReview, keeps it
// in an HttpOnly cookie, and forwards read-only (GET) API requests with it, so the
// user sees exactly what their RBAC permissions allow.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

//go:embed web
var webFiles embed.FS

var version = "dev"

const (
	sessionCookie = "microkube_dashboard_session"
	saDir         = "/var/run/secrets/kubernetes.io/serviceaccount"
	maxTokenBytes = 16 << 10
)

type server struct {
	api       *url.URL
	transport http.RoundTripper
	proxy     *httputil.ReverseProxy
}

func main() {
	listen := flag.String("listen", ":8080", "address to serve the dashboard on")
	apiServer := flag.String("api-server", "", "API server URL (default: the in-cluster address)")
	caFile := flag.String("ca-file", saDir+"/ca.crt", "CA bundle that signs the API server's certificate")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println("microkube-dashboard", version)
		return
	}
	if err := run(*listen, *apiServer, *caFile); err != nil {
		log.Fatal(err)
	}
}

func run(listen, apiServer, caFile string) error {
	if apiServer == "" {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return errors.New("not in a cluster: give --api-server")
		}
		apiServer = "https://" + net.JoinHostPort(host, port)
	}
	api, err := url.Parse(apiServer)
	if err != nil {
		return fmt.Errorf("--api-server: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("reading the API server CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	s := &server{api: api, transport: transport}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:   s.rewrite,
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "the API server did not answer: "+err.Error(), http.StatusBadGateway)
		},
	}
	srv := &http.Server{
		Addr:              listen,
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("microkube dashboard %s on %s, API server %s", version, listen, api)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *server) routes() http.Handler {
	static, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /whoami", s.whoami)
	mux.HandleFunc("GET /k8s/", s.forward)
	return securityHeaders(mux)
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy",
			"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// reviewUser asks the API server who a token belongs to.
func (s *server) reviewUser(ctx context.Context, token string) (string, int, error) {
	body := []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
	u := s.api.JoinPath("/apis/authentication.k8s.io/v1/selfsubjectreviews")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: s.transport, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", http.StatusBadGateway, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", resp.StatusCode, fmt.Errorf("the API server refused the token (%s)", resp.Status)
	}
	var review struct {
		Status struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil {
		return "", http.StatusBadGateway, err
	}
	return review.Status.UserInfo.Username, resp.StatusCode, nil
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, maxTokenBytes)).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "send {\"token\": \"...\"}"})
		return
	}
	token := strings.TrimSpace(in.Token)
	if token == "" || strings.ContainsAny(token, " \t\r\n;") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "that is not a token"})
		return
	}
	user, code, err := s.reviewUser(r.Context(), token)
	if err != nil {
		if code == http.StatusUnauthorized || code == http.StatusForbidden {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "the token was not accepted"})
		} else {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		}
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600,
	})
	writeJSON(w, http.StatusOK, map[string]string{"user": user})
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, map[string]string{})
}

func sessionToken(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

func (s *server) whoami(w http.ResponseWriter, r *http.Request) {
	token := sessionToken(r)
	if token == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not signed in"})
		return
	}
	user, code, err := s.reviewUser(r.Context(), token)
	if err != nil {
		if code != http.StatusUnauthorized && code != http.StatusForbidden {
			code = http.StatusBadGateway
		}
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"user": user, "version": version})
}

// forward passes GET /k8s/api/... and /k8s/apis/... to the API server with the user's token.
func (s *server) forward(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/k8s")
	if !strings.HasPrefix(path, "/api/") && !strings.HasPrefix(path, "/apis/") {
		http.Error(w, "only /k8s/api/... and /k8s/apis/... are forwarded", http.StatusNotFound)
		return
	}
	if sessionToken(r) == "" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "not signed in"})
		return
	}
	s.proxy.ServeHTTP(w, r)
}

func (s *server) rewrite(pr *httputil.ProxyRequest) {
	token := sessionToken(pr.In)
	pr.SetURL(s.api)
	pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/k8s")
	pr.Out.URL.RawPath = ""
	pr.Out.Host = s.api.Host
	pr.Out.Header.Del("Cookie")
	pr.Out.Header.Set("Authorization", "Bearer "+token)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
