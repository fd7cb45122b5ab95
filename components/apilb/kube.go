package main

// Talking to the API servers: the health check (GET /readyz) and the list of API servers
// (the `kubernetes` Service's EndpointSlices in `default`), both with the worker's
// kube-proxy credential, which may list EndpointSlices (system:node-proxier) and read
// /readyz (system:public-info-viewer).

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// SlicesPath lists the EndpointSlices of the `kubernetes` Service: the API servers' own
// addresses, which each API server keeps up to date (its endpoint reconciler).
const SlicesPath = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices" +
	"?labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes"

// Credential is what the balancer presents to the API servers.
type Credential struct {
	CA   *x509.CertPool
	Cert tls.Certificate
}

// ReadKubeconfig takes the CA and the client pair from a kubeconfig that embeds them, one
// base64 line each, as microkube writes its kubeconfigs (pki/kubeconfig.py); only the
// first cluster and user are read.
func ReadKubeconfig(path string) (*Credential, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fields := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		key = strings.TrimPrefix(strings.TrimSpace(key), "- ")
		switch key {
		case "certificate-authority-data", "client-certificate-data", "client-key-data":
			if _, seen := fields[key]; seen {
				continue
			}
			data, err := base64.StdEncoding.DecodeString(strings.Trim(strings.TrimSpace(value), `"'`))
			if err != nil {
				return nil, fmt.Errorf("%s: %s is not base64: %v", path, key, err)
			}
			fields[key] = data
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, k := range []string{"certificate-authority-data", "client-certificate-data", "client-key-data"} {
		if len(fields[k]) == 0 {
			return nil, fmt.Errorf("%s: no %s (an embedded credential is needed)", path, k)
		}
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(fields["certificate-authority-data"]) {
		return nil, fmt.Errorf("%s: certificate-authority-data holds no PEM certificate", path)
	}
	pair, err := tls.X509KeyPair(fields["client-certificate-data"], fields["client-key-data"])
	if err != nil {
		return nil, fmt.Errorf("%s: client credential: %v", path, err)
	}
	return &Credential{CA: pool, Cert: pair}, nil
}

// API is an HTTPS client for any one API server, trusting only the cluster CA.
type API struct {
	client *http.Client
}

// NewAPI makes the client; connections are kept alive, so a check every second is one
// small request on an open TLS connection, not a handshake.
func NewAPI(cred *Credential) *API {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: cred.CA, Certificates: []tls.Certificate{cred.Cert}, MinVersion: tls.VersionTLS12},
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     30 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	return &API{client: &http.Client{Transport: tr}}
}

func (a *API) get(ctx context.Context, addr, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return body, nil
}

// Ready is a Checker: the server's /readyz says ok.
func (a *API) Ready(ctx context.Context, addr string) error {
	_, err := a.get(ctx, addr, "/readyz")
	return err
}

// APIServers asks the server at addr for the API servers' addresses (host:port).
func (a *API) APIServers(ctx context.Context, addr string) ([]string, error) {
	body, err := a.get(ctx, addr, SlicesPath)
	if err != nil {
		return nil, err
	}
	return ParseSlices(body)
}

type endpointSlices struct {
	Items []struct {
		Endpoints []struct {
			Addresses  []string `json:"addresses"`
			Conditions struct {
				Ready *bool `json:"ready"`
			} `json:"conditions"`
		} `json:"endpoints"`
		Ports []struct {
			Name *string `json:"name"`
			Port *int    `json:"port"`
		} `json:"ports"`
	} `json:"items"`
}

// ParseSlices turns an EndpointSliceList into sorted host:port addresses: every ready
// endpoint with the slice's https port (its only port).
func ParseSlices(body []byte) ([]string, error) {
	var doc endpointSlices
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("EndpointSliceList: %v", err)
	}
	seen := map[string]bool{}
	out := []string{}
	for _, item := range doc.Items {
		port := 0
		for _, p := range item.Ports {
			if p.Port != nil && (port == 0 || (p.Name != nil && *p.Name == "https")) {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, ep := range item.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			for _, ip := range ep.Addresses {
				addr := net.JoinHostPort(ip, strconv.Itoa(port))
				if !seen[addr] {
					seen[addr] = true
					out = append(out, addr)
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the kubernetes Service lists no API server")
	}
	sort.Strings(out)
	return out, nil
}
