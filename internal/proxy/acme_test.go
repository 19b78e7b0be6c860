package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// The ACME tests run Pebble, Let's Encrypt's test CA, as a process on
// loopback (built from the module's tool dependency,
// github.com/letsencrypt/pebble/v2/cmd/pebble), and validate for real: its
// -dnsserver is a tiny resolver of the test that answers 127.0.0.1 for every
// name, and its httpPort and tlsPort are the front door's ports. The other
// challenge's port is one nobody listens on, so that each subtest proves
// that one challenge type works end to end.

// acmeWait bounds an issuance: Pebble validates, the client polls.
const acmeWait = 90 * time.Second

var pebbleBin struct {
	once sync.Once
	path string
	err  error
}

// TestMain removes the Pebble binary the tests built, if any.
func TestMain(m *testing.M) {
	code := m.Run()
	if pebbleBin.path != "" {
		os.RemoveAll(filepath.Dir(pebbleBin.path))
	}
	os.Exit(code)
}

func buildPebble(t *testing.T) string {
	t.Helper()
	pebbleBin.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			pebbleBin.err = err
			return
		}
		dir, err := os.MkdirTemp("", "liftoff-pebble-")
		if err != nil {
			pebbleBin.err = err
			return
		}
		pebbleBin.path = filepath.Join(dir, "pebble")
		// The version go.mod's tool directive pins; a cold module
		// cache fetches it from the module proxy, as go test does.
		cmd := exec.Command(goBin, "build", "-o", pebbleBin.path, "github.com/letsencrypt/pebble/v2/cmd/pebble")
		if out, err := cmd.CombinedOutput(); err != nil {
			pebbleBin.err = fmt.Errorf("%s: %v\n%s", cmd, err, out)
		}
	})
	if pebbleBin.err != nil {
		t.Fatalf("build pebble: %v", pebbleBin.err)
	}
	return pebbleBin.path
}

// loopbackDNS answers every A question with 127.0.0.1 and every other
// question with no answer, over TCP (which Pebble's resolver uses) and UDP
// on one port; it returns its address.
func loopbackDNS(t *testing.T) string {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	for try := 0; pc == nil; try++ {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", ln.Addr().String()); err != nil {
			ln.Close()
			if try == 10 {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() { ln.Close(); pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if msg := dnsAnswer(buf[:n]); msg != nil {
				pc.WriteTo(msg, from)
			}
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(deadline))
				for {
					var size [2]byte
					if _, err := io.ReadFull(c, size[:]); err != nil {
						return
					}
					q := make([]byte, int(size[0])<<8|int(size[1]))
					if _, err := io.ReadFull(c, q); err != nil {
						return
					}
					msg := dnsAnswer(q)
					if msg == nil {
						return
					}
					c.Write(append([]byte{byte(len(msg) >> 8), byte(len(msg))}, msg...))
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dnsAnswer answers the query q: 127.0.0.1 for A, nothing for the rest.
func dnsAnswer(q []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil
	}
	question, err := p.Question()
	if err != nil {
		return nil
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
	b.StartQuestions()
	b.Question(question)
	b.StartAnswers()
	if question.Type == dnsmessage.TypeA {
		b.AResource(dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
	}
	msg, err := b.Finish()
	if err != nil {
		return nil
	}
	return msg
}

// freePort returns a loopback port nobody listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type pebble struct {
	dir    string         // its ACME directory URL
	client *http.Client   // trusts its listener
	roots  *x509.CertPool // the roots it signs with
}

// startPebble runs Pebble validating HTTP-01 on httpPort and TLS-ALPN-01 on
// tlsPort of 127.0.0.1, issuing certificates valid for validity.
func startPebble(t *testing.T, httpPort, tlsPort int, validity time.Duration) *pebble {
	t.Helper()
	bin := buildPebble(t)
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile, keyFile := ca.issue(t, dir, 2, "localhost")
	apiPort, mgmtPort := freePort(t), freePort(t)
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":           "127.0.0.1:" + strconv.Itoa(apiPort),
		"managementListenAddress": "127.0.0.1:" + strconv.Itoa(mgmtPort),
		"certificate":             certFile,
		"privateKey":              keyFile,
		"httpPort":                httpPort,
		"tlsPort":                 tlsPort,
		"ocspResponderURL":        "",
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":            "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "test", "validityPeriod": int(validity / time.Second),
		}},
	}}
	b, _ := json.Marshal(cfg)
	cfgFile := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "-config", cfgFile, "-dnsserver", loopbackDNS(t))
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("pebble's log:\n%s", logs.String())
		}
	})
	tr := &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: ca.pool}}
	t.Cleanup(tr.CloseIdleConnections)
	p := &pebble{
		dir:    fmt.Sprintf("https://localhost:%d/dir", apiPort),
		client: &http.Client{Transport: tr, Timeout: deadline},
	}
	// Up when its directory answers.
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		res, err := p.client.Get(p.dir)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Since(start) > deadline {
			t.Fatalf("pebble did not answer at %s: %v\n%s", p.dir, err, logs.String())
		}
	}
	res, err := p.client.Get(fmt.Sprintf("https://localhost:%d/roots/0", mgmtPort))
	if err != nil {
		t.Fatal(err)
	}
	pemRoot, _ := io.ReadAll(res.Body)
	res.Body.Close()
	p.roots = x509.NewCertPool()
	if !p.roots.AppendCertsFromPEM(pemRoot) {
		t.Fatalf("pebble's root: %q", pemRoot)
	}
	return p
}

// TestDoorACME: two deployments on one TLS address by Host, each with a
// certificate Pebble issued after validating the challenge for real, once
// with TLS-ALPN-01 on the front door and once with HTTP-01 on its HTTP
// listener; the account and certificates land in the cache directory. With
// tls-alpn-01 the certificates are short-lived, and renewed while requests
// flow: none fails.
func TestDoorACME(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	for _, challenge := range []string{"tls-alpn-01", "http-01"} {
		t.Run(challenge, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("the proxy's log:\n%s", h.logs.String())
				}
			})
			// Listen first: Pebble needs the ports.
			main, plain := freePort(t), freePort(t)
			httpPort, tlsPort, validity := plain, freePort(t), 24*time.Hour
			renew := time.Duration(0)
			if challenge == "tls-alpn-01" {
				httpPort, tlsPort = freePort(t), main
				validity, renew = time.Minute, 55*time.Second // renewed ~5s after issuance
			}
			cache := filepath.Join(t.TempDir(), "acme")
			door := Door{
				Listen:     "127.0.0.1:" + strconv.Itoa(main),
				HTTPListen: "127.0.0.1:" + strconv.Itoa(plain),
				TLS:        &DoorTLS{ACME: &ACME{Email: "ops@example.test", CacheDir: cache, RenewBefore: renew}},
			}
			peb := startPebble(t, httpPort, tlsPort, validity)
			door.TLS.ACME.DirectoryURL = peb.dir
			door.TLS.ACME.HTTPClient = peb.client
			routes := []Route{hostRoute("a", "", "a.example.test"), hostRoute("b", "", "b.example.test")}
			if err := h.p.Apply(door, routes); err != nil {
				t.Fatal(err)
			}
			a, b := newApp(t, "a"), newApp(t, "b")
			h.p.Switch("a", a.addr())
			h.p.Switch("b", b.addr())
			addr := h.p.DoorAddr().String()
			c := doorClient(t, func() string { return addr }, peb.roots)
			c.Timeout = acmeWait
			serials := map[string]string{}
			for _, n := range []string{"a", "b"} {
				res, body := doorGet(t, c, "https://"+n+".example.test/")
				if res.StatusCode != 200 || body != n {
					t.Fatalf("%s: %d %q", n, res.StatusCode, body)
				}
				leaf := res.TLS.PeerCertificates[0]
				if err := leaf.VerifyHostname(n + ".example.test"); err != nil {
					t.Fatalf("%s: %v", n, err)
				}
				serials[n] = leaf.SerialNumber.String()
			}
			if _, err := os.Stat(filepath.Join(cache, "a.example.test")); err != nil {
				t.Errorf("a's certificate is not in the cache: %v", err)
			}
			// A host no route names gets no certificate (and Pebble no
			// order).
			if _, err := c.Get("https://unknown.example.test/"); err == nil {
				t.Error("a host no route names got a certificate")
			}
			if challenge != "tls-alpn-01" {
				return
			}

			var ok, failed atomic.Int64
			var firstErr atomic.Value
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := c
					if i%2 == 1 {
						cl = doorClient(t, func() string { return addr }, peb.roots)
						cl.Transport.(*http.Transport).DisableKeepAlives = true
					}
					for ctx.Err() == nil {
						res, err := cl.Get("https://a.example.test/")
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
			renewed := false
			for start := time.Now(); time.Since(start) < acmeWait; time.Sleep(100 * time.Millisecond) {
				fresh := doorClient(t, func() string { return addr }, peb.roots)
				res, _ := doorGet(t, fresh, "https://a.example.test/")
				if res.TLS.PeerCertificates[0].SerialNumber.String() != serials["a"] {
					renewed = true
					break
				}
			}
			// Requests keep flowing on the renewed certificate.
			for n := ok.Load(); ok.Load() < n+20 && failed.Load() == 0; time.Sleep(time.Millisecond) {
			}
			stop()
			wg.Wait()
			if !renewed {
				t.Fatalf("a's certificate was not renewed within %v", acmeWait)
			}
			if n := failed.Load(); n > 0 {
				t.Errorf("%d of %d requests failed while the certificate was renewed; the first: %v", n, n+ok.Load(), firstErr.Load())
			}
		})
	}
}
