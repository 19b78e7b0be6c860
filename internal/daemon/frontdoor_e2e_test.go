package daemon_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// frontDoorConfig is two deployments, NAME-a (tag staging) and NAME-b (tag
// stable), on one TLS front door by Host. DOOR, CERT and KEY are replaced.
const frontDoorConfig = configHead + `front_door:
  listen: "DOOR"
  hsts: 24h
  tls: {cert_file: CERT, key_file: KEY}
deployments:
  - name: %[1]s-a
    image: acme/%[1]s
    tags: [staging]
    env: {WHO: a}
    stop_timeout: 1s
    proxy: {hosts: [a.example.test], port: 8000, drain_timeout: 10s}
    health: {url: "http://{upstream}/healthz", timeout: 8s, min_uptime: 500ms}
  - name: %[1]s-b
    image: acme/%[1]s
    tags: [stable]
    env: {WHO: b}
    stop_timeout: 1s
    proxy: {hosts: [b.example.test], path_prefix: /, port: 8000, drain_timeout: 10s}
    health: {url: "http://{upstream}/healthz", timeout: 8s, min_uptime: 500ms}
`

// doorCert writes a certificate for a.example.test and b.example.test
// with serial, signed by the CA key, to dir (written beside and renamed, as
// certbot does).
func doorCert(t *testing.T, dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "a.example.test"},
		DNSNames: []string{"a.example.test", "b.example.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "door.pem"), filepath.Join(dir, "door.key")
	for path, b := range map[string][]byte{
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	} {
		if err := os.WriteFile(path+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// TestFrontDoorTwoAppsTLS: two deployments behind one TLS address, told
// apart by Host, over HTTP/2 with HSTS; a deploy of one and a reload that
// picks up a renewed certificate, while clients keep asking both over
// kept-alive and new connections, lose no request; the new handshakes get
// the new certificate.
func TestFrontDoorTwoAppsTLS(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	dir := t.TempDir()
	certFile, keyFile := doorCert(t, dir, ca, caKey, 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	config := strings.NewReplacer("DOOR", addr, "CERT", certFile, "KEY", keyFile).Replace(frontDoorConfig)
	d := startDaemonWith(t, config, daemonOptions{})
	d.pushImage("staging", testenv.AppImage{Version: "a1"})
	d.deployOK("staging")
	d.pushImage("stable", testenv.AppImage{Version: "b1"})
	d.deployOK("stable")

	client := func(keepAlive bool) *http.Client {
		tr := &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
			DisableKeepAlives: !keepAlive,
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	type answer struct {
		Version string            `json:"version"`
		Env     map[string]string `json:"env"`
	}
	get := func(c *http.Client, host string) (answer, *http.Response, error) {
		var a answer
		res, err := c.Get("https://" + host + "/")
		if err != nil {
			return a, nil, err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return a, res, fmt.Errorf("status %d", res.StatusCode)
		}
		return a, res, json.NewDecoder(res.Body).Decode(&a)
	}
	for _, who := range []string{"a", "b"} {
		a, res, err := get(client(false), who+".example.test")
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		if a.Env["WHO"] != who || res.ProtoMajor != 2 || res.Header.Get("Strict-Transport-Security") != "max-age=86400" {
			t.Errorf("%s: WHO=%q over %s with HSTS %q", who, a.Env["WHO"], res.Proto, res.Header.Get("Strict-Transport-Security"))
		}
	}

	var ok, failed atomic.Int64
	var mu sync.Mutex
	var failures []string
	versions := map[string]bool{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, who := client(i < 2), []string{"a", "b"}[i%2]
			for ctx.Err() == nil {
				a, _, err := get(c, who+".example.test")
				mu.Lock()
				switch {
				case err != nil:
					failed.Add(1)
					failures = append(failures, fmt.Sprintf("%s: %v", who, err))
				case a.Env["WHO"] != who:
					failed.Add(1)
					failures = append(failures, fmt.Sprintf("%s answered for %s", a.Env["WHO"], who))
				default:
					ok.Add(1)
					versions[a.Version] = true
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	t.Cleanup(func() { stop(); wg.Wait() })

	d.pushImage("staging", testenv.AppImage{Version: "a2"})
	d.deployOK("staging")
	doorCert(t, dir, ca, caKey, 3)
	if status, msg := d.reload(); status != http.StatusOK {
		t.Fatalf("reload: %d %s", status, msg)
	}
	// Requests keep flowing after the reload (the clients' timeout
	// bounds each).
	for n := ok.Load(); ok.Load() < n+20 && failed.Load() == 0; time.Sleep(10 * time.Millisecond) {
	}
	stop()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed; the first: %s", len(failures), int(ok.Load())+len(failures), failures[0])
	}
	if !versions["a2"] || !versions["b1"] {
		t.Errorf("versions seen %v, want a2 and b1 among them", versions)
	}
	_, res, err := get(client(false), "a.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if serial := res.TLS.PeerCertificates[0].SerialNumber.Int64(); serial != 3 {
		t.Errorf("after the reload a new connection got certificate %d, want the renewed 3", serial)
	}
	got := d.eng.Containers(t, d.prefix)
	slices.Sort(got)
	if want := []string{d.prefix + "-a running", d.prefix + "-b running"}; !slices.Equal(got, want) {
		t.Errorf("containers %v, want %v", got, want)
	}
}
