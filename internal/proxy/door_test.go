package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testCA signs the front door's certificates in tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "liftoff test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes a certificate for names, with serial, and its key to dir;
// it returns their paths.
func (ca *testCA) issue(t *testing.T, dir string, serial int64, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	// Written beside and renamed, as certbot and friends do, so that a
	// reload never reads half a file.
	for _, f := range []struct {
		path string
		typ  string
		b    []byte
	}{{certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", kb}} {
		tmp := f.path + ".new"
		if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.b}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			t.Fatal(err)
		}
	}
	return certFile, keyFile
}

// doorClient is a client that sends every request to the front door, for
// whatever host its URL names, trusting roots; it speaks HTTP/2 when the
// door offers it.
func doorClient(t *testing.T, addr func() string, roots *x509.CertPool) *http.Client {
	t.Helper()
	d := &net.Dialer{Timeout: deadline}
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr())
		},
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 64,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport: tr,
		Timeout:   deadline,
		// The redirects of HTTPListen are what some tests look at.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func doorGet(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return res, string(b)
}

func hostRoute(name, prefix string, hosts ...string) Route {
	return Route{Deployment: name, Hosts: hosts, PathPrefix: prefix}
}

// TestDoorRouting: the front door picks a deployment by exact Host, then a
// wildcard of its parent, then the longest path prefix; an unknown host is
// 404 (counted), or the default deployment's when there is one.
func TestDoorRouting(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	apps := map[string]*app{}
	for _, n := range []string{"www", "api", "wild", "apiv2", "fallback"} {
		apps[n] = newApp(t, n)
	}
	routes := []Route{
		hostRoute("www", "", "example.test", "www.example.test"),
		hostRoute("api", "/api", "www.example.test"),
		hostRoute("apiv2", "/api/v2/", "www.example.test"),
		hostRoute("wild", "", "*.example.test"),
		{Deployment: "fallback", Listen: "127.0.0.1:0"},
	}
	door := Door{Listen: "127.0.0.1:0"}
	if err := h.p.Apply(door, routes); err != nil {
		t.Fatal(err)
	}
	for n, a := range apps {
		h.p.Switch(n, a.addr())
	}
	c := doorClient(t, func() string { return h.p.DoorAddr().String() }, nil)
	check := func(host, path string, code int, want string) {
		t.Helper()
		res, body := doorGet(t, c, "http://"+host+path)
		if res.StatusCode != code || (want != "" && res.Header.Get("X-Upstream") != want) {
			t.Errorf("%s%s: %d from %q, want %d from %q (%q)", host, path, res.StatusCode, res.Header.Get("X-Upstream"), code, want, body)
		}
	}
	check("example.test", "/", 200, "www")
	check("WWW.Example.Test.", "/x", 200, "www")
	check("www.example.test", "/api", 200, "api")
	check("www.example.test", "/api/users", 200, "api")
	check("www.example.test", "/apix", 200, "www")
	check("www.example.test", "/api/v2", 200, "apiv2")
	check("www.example.test", "/api/v2/x", 200, "apiv2")
	check("shop.example.test", "/api/v2/x", 200, "wild")
	check("a.shop.example.test", "/", 404, "")
	check("other.test", "/", 404, "")
	if n := testutil.ToFloat64(h.p.met.unrouted); n != 2 {
		t.Errorf("liftoff_front_door_unrouted_total = %v, want 2", n)
	}
	// A default deployment, and a route that moves from the front door
	// to a listener of its own, on a reload: the front door stays.
	addr := h.p.DoorAddr().String()
	door.Default = "fallback"
	routes[3] = Route{Deployment: "wild", Listen: "127.0.0.1:0"}
	if err := h.p.Apply(door, routes); err != nil {
		t.Fatal(err)
	}
	if got := h.p.DoorAddr().String(); got != addr {
		t.Fatalf("the front door moved from %s to %s on a reload", addr, got)
	}
	check("other.test", "/", 200, "fallback")
	check("shop.example.test", "/", 200, "fallback")
	check("example.test", "/", 200, "www")
	if res, _ := h.get("wild", "/"); res.Header.Get("X-Upstream") != "wild" {
		t.Errorf("wild's own listener: from %q", res.Header.Get("X-Upstream"))
	}
}

// TestDoorRefused: a front door or routes that cannot work are refused
// with an error naming what, and change nothing.
func TestDoorRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := ca.issue(t, dir, 2, "a.example.test")
	door := Door{Listen: "127.0.0.1:0"}
	tests := []struct {
		name   string
		door   Door
		routes []Route
		want   string
	}{
		{"hosts without a door", Door{}, []Route{hostRoute("a", "", "a.example.test")}, "hosts need a front door"},
		{"both listen and hosts", door, []Route{{Deployment: "a", Listen: "127.0.0.1:0", Hosts: []string{"a.example.test"}}}, "not both"},
		{"neither", door, []Route{{Deployment: "a"}}, "no listen address and no hosts"},
		{"same host twice", door, []Route{hostRoute("a", "/x", "a.example.test"), hostRoute("b", "/x/", "a.example.test")}, `host a.example.test with path prefix "/x/" is also a's`},
		{"bad host", door, []Route{hostRoute("a", "", "a.example.test:443")}, "without port or path"},
		{"upper case", door, []Route{hostRoute("a", "", "A.example.test")}, "lower case"},
		{"inner wildcard", door, []Route{hostRoute("a", "", "a.*.test")}, "whole first label"},
		{"bad prefix", door, []Route{hostRoute("a", "api", "a.example.test")}, "starts with /"},
		{"unknown default", Door{Listen: "127.0.0.1:0", Default: "nope"}, []Route{hostRoute("a", "", "a.example.test")}, "default nope is not a proxied deployment"},
		{"redirect without tls", Door{Listen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0"}, nil, "has no tls"},
		{"tls without certificates", Door{Listen: "127.0.0.1:0", TLS: &DoorTLS{}}, nil, "certificate files or acme"},
		{"missing key", Door{Listen: "127.0.0.1:0", TLS: &DoorTLS{CertFile: certFile}}, nil, "both a certificate file and a key file"},
		{"unreadable certificate", Door{Listen: "127.0.0.1:0", TLS: &DoorTLS{CertFile: keyFile, KeyFile: certFile}}, nil, "front door: certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			a := newApp(t, "keep")
			keep := Route{Deployment: "keep", Hosts: []string{"keep.example.test"}}
			if err := h.p.Apply(door, []Route{keep}); err != nil {
				t.Fatal(err)
			}
			h.p.Switch("keep", a.addr())
			addr := h.p.DoorAddr().String()
			err := h.p.Apply(tt.door, append(tt.routes, keep))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Apply: %v, want an error with %q", err, tt.want)
			}
			if got := h.p.DoorAddr(); got == nil || got.String() != addr {
				t.Fatalf("after a refused Apply the front door is at %v, want %s", got, addr)
			}
			c := doorClient(t, func() string { return addr }, nil)
			if res, _ := doorGet(t, c, "http://keep.example.test/"); res.StatusCode != 200 {
				t.Fatalf("after a refused Apply: %d", res.StatusCode)
			}
		})
	}
}

// tlsDoor is a front door with TLS from certificate files, an HTTP
// listener, and two deployments by Host.
type tlsDoor struct {
	h           *harness
	ca          *testCA
	dir         string
	door        Door
	routes      []Route
	c           *http.Client
	a, b        *app
	certFile    string
	keyFile     string
	doorAddr    string
	plainAddr   string
	plainClient *http.Client
}

func newTLSDoor(t *testing.T, hsts time.Duration) *tlsDoor {
	t.Helper()
	d := &tlsDoor{h: newHarness(t), ca: newTestCA(t), dir: t.TempDir()}
	d.certFile, d.keyFile = d.ca.issue(t, d.dir, 2, "a.example.test", "b.example.test")
	d.door = Door{Listen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", HSTS: hsts,
		TLS: &DoorTLS{CertFile: d.certFile, KeyFile: d.keyFile}}
	d.routes = []Route{hostRoute("a", "", "a.example.test"), hostRoute("b", "", "b.example.test")}
	if err := d.h.p.Apply(d.door, d.routes); err != nil {
		t.Fatal(err)
	}
	d.a, d.b = newApp(t, "a"), newApp(t, "b")
	d.h.p.Switch("a", d.a.addr())
	d.h.p.Switch("b", d.b.addr())
	d.doorAddr, d.plainAddr = d.h.p.DoorAddr().String(), d.h.p.HTTPAddr().String()
	d.c = doorClient(t, func() string { return d.doorAddr }, d.ca.pool)
	d.plainClient = doorClient(t, func() string { return d.plainAddr }, nil)
	return d
}

// TestDoorTLS: two deployments on one TLS address by Host, over HTTP/2,
// told the request came over https; HSTS when asked; the HTTP listener
// redirects to https with the path and query, keeping the method of a
// POST.
func TestDoorTLS(t *testing.T) {
	t.Parallel()
	for _, hsts := range []time.Duration{0, 365 * 24 * time.Hour} {
		t.Run(fmt.Sprintf("hsts=%v", hsts), func(t *testing.T) {
			t.Parallel()
			d := newTLSDoor(t, hsts)
			for _, n := range []string{"a", "b"} {
				res, body := doorGet(t, d.c, "https://"+n+".example.test/x")
				if res.StatusCode != 200 || body != n {
					t.Fatalf("%s: %d %q", n, res.StatusCode, body)
				}
				if res.ProtoMajor != 2 {
					t.Errorf("%s: %s, want HTTP/2", n, res.Proto)
				}
				if got := res.Header.Get("X-Got-X-Forwarded-Proto"); got != "https" {
					t.Errorf("%s: X-Forwarded-Proto %q, want https", n, got)
				}
				if got := res.Header.Get("X-Got-X-Forwarded-Host"); got != n+".example.test" {
					t.Errorf("%s: X-Forwarded-Host %q", n, got)
				}
				want := ""
				if hsts > 0 {
					want = "max-age=31536000"
				}
				if got := res.Header.Get("Strict-Transport-Security"); got != want {
					t.Errorf("Strict-Transport-Security %q, want %q", got, want)
				}
			}
			_, port, _ := net.SplitHostPort(d.doorAddr)
			res, _ := doorGet(t, d.plainClient, "http://a.example.test/x/y?z=1")
			if loc := res.Header.Get("Location"); res.StatusCode != http.StatusMovedPermanently || loc != "https://a.example.test:"+port+"/x/y?z=1" {
				t.Errorf("plain GET: %d to %q", res.StatusCode, loc)
			}
			res, err := d.plainClient.Post("http://b.example.test/form", "text/plain", strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusPermanentRedirect {
				t.Errorf("plain POST: %d, want 308", res.StatusCode)
			}
			if n := d.a.served.Load() + d.b.served.Load(); n != 2 {
				t.Errorf("the apps served %d requests, want 2 (plain HTTP reaches none)", n)
			}
		})
	}
}

// TestDoorHSTSOfTheApp: an app that sends its own Strict-Transport-Security
// keeps it, alone; the front door's goes to the others.
func TestDoorHSTSOfTheApp(t *testing.T) {
	t.Parallel()
	d := newTLSDoor(t, 365*24*time.Hour)
	own := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=60; includeSubDomains")
		io.WriteString(w, "own")
	}))
	t.Cleanup(own.Close)
	d.h.p.Switch("a", own.Listener.Addr().String())
	for _, tt := range []struct{ host, want string }{
		{"a.example.test", "max-age=60; includeSubDomains"},
		{"b.example.test", "max-age=31536000"},
	} {
		res, _ := doorGet(t, d.c, "https://"+tt.host+"/")
		if got := res.Header.Values("Strict-Transport-Security"); len(got) != 1 || got[0] != tt.want {
			t.Errorf("%s: Strict-Transport-Security %q, want only %q", tt.host, got, tt.want)
		}
	}
}

// TestDoorRedirectPort: the HTTP listener redirects to RedirectPort when
// given (a front door behind a port mapping), leaving 443 out of the
// address, rather than to the port the front door itself listens on; a
// reload changes the port; a port out of range is refused.
func TestDoorRedirectPort(t *testing.T) {
	t.Parallel()
	d := newTLSDoor(t, 0)
	for _, tt := range []struct {
		port int
		want string
	}{
		{443, "https://a.example.test/x?y=1"},
		{8443, "https://a.example.test:8443/x?y=1"},
	} {
		door := d.door
		door.RedirectPort = tt.port
		if err := d.h.p.Apply(door, d.routes); err != nil {
			t.Fatal(err)
		}
		res, _ := doorGet(t, d.plainClient, "http://a.example.test:8080/x?y=1")
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusMovedPermanently || loc != tt.want {
			t.Errorf("redirect port %d: %d to %q, want %q", tt.port, res.StatusCode, loc, tt.want)
		}
	}
	bad := d.door
	bad.RedirectPort = 70000
	if err := d.h.p.Apply(bad, d.routes); err == nil || !strings.Contains(err.Error(), "redirect port 70000") {
		t.Errorf("redirect port 70000: %v", err)
	}
}

// TestDoorWebSocket: an upgrade over the TLS front door (HTTP/1.1, as
// browsers do a WebSocket) reaches the app and echoes.
func TestDoorWebSocket(t *testing.T) {
	t.Parallel()
	d := newTLSDoor(t, 0)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Forwarded-Proto") != "https" {
			http.Error(w, "not a websocket over https", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(c, brw.Reader)
	}))
	t.Cleanup(up.Close)
	d.h.p.Switch("a", up.Listener.Addr().String())
	c, err := tls.Dial("tcp", d.doorAddr, &tls.Config{RootCAs: d.ca.pool, ServerName: "a.example.test", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(deadline))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a.example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %d", res.StatusCode)
	}
	io.WriteString(c, "ping\n")
	if line, err := br.ReadString('\n'); line != "ping\n" {
		t.Fatalf("echo: %q, %v", line, err)
	}
}

// TestDoorReloadUnderLoad: while clients send requests over kept-alive and
// new connections, the certificate files are replaced and applied
// (SIGHUP's path), and a deployment is added and another moved: no request
// fails, new handshakes get the new certificate, the front door's address
// stays.
func TestDoorReloadUnderLoad(t *testing.T) {
	t.Parallel()
	d := newTLSDoor(t, 0)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := d.c
			if i%2 == 1 { // a new connection for each request
				c = doorClient(t, func() string { return d.doorAddr }, d.ca.pool)
				c.Transport.(*http.Transport).DisableKeepAlives = true
			}
			for {
				select {
				case <-stop:
					return
				default:
				}
				host := []string{"a", "b"}[i%2]
				res, err := c.Get("https://" + host + ".example.test/")
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	// Requests are flowing before each change, and after the last.
	flowing := func() {
		t.Helper()
		n := ok.Load()
		for ok.Load() < n+20 {
			if failed.Load() > 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	flowing()
	for serial := int64(3); serial < 8; serial++ {
		d.ca.issue(t, d.dir, serial, "a.example.test", "b.example.test", "c.example.test")
		c := newApp(t, fmt.Sprintf("c%d", serial))
		routes := append([]Route{}, d.routes...)
		routes = append(routes, hostRoute("c", "", "c.example.test"))
		if serial%2 == 0 {
			routes[1] = hostRoute("b", "/", "b.example.test")
		}
		if err := d.h.p.Apply(d.door, routes); err != nil {
			t.Fatal(err)
		}
		d.h.p.Switch("c", c.addr())
		flowing()
		fresh := doorClient(t, func() string { return d.doorAddr }, d.ca.pool)
		res, body := doorGet(t, fresh, "https://c.example.test/")
		if body != c.name {
			t.Errorf("c after reload %d: %d %q", serial, res.StatusCode, body)
		}
		if got := res.TLS.PeerCertificates[0].SerialNumber.Int64(); got != serial {
			t.Errorf("a new handshake after reload %d got certificate %d", serial, got)
		}
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed across the reloads; the first: %v", n, n+ok.Load(), firstErr.Load())
	}
	if got := d.h.p.DoorAddr().String(); got != d.doorAddr {
		t.Errorf("the front door moved to %s", got)
	}
}
