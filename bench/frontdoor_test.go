package bench

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
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkFrontDoorTLS compares liftoff's front door (TLS from
// certificate files, routed by Host) with a bare Go TLS reverse proxy
// (httputil.ReverseProxy behind an http.Server), both bench/doorbench
// processes limited to one core (GOMAXPROCS=1), in front of one small
// upstream. Each iteration is one round of each, bare first: doorConns
// clients on kept-alive HTTP/1.1 TLS connections send GET / back to back
// for doorRound. It reports requests a second and p99 of each and their
// ratio (the goal: door/bare ≥ 0.8), then what 1,000 idle kept-alive TLS
// connections (one request each, then nothing) add to each one's resident
// memory.
//
//	go test -run '^$' -bench FrontDoorTLS -benchtime 3x ./bench/
func BenchmarkFrontDoorTLS(b *testing.B) {
	dir := b.TempDir()
	certFile, keyFile, roots := benchCert(b, dir, "bench.example.test")
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	}))
	b.Cleanup(up.Close)
	upstream := up.Listener.Addr().String()
	bare := startDoorBench(b, "bare", upstream, certFile, keyFile)
	door := startDoorBench(b, "door", upstream, certFile, keyFile)

	var bareN, doorN int
	var bareT, doorT time.Duration
	var bareLat, doorLat []time.Duration
	for _, p := range []*doorProc{bare, door} { // handshakes done, pools warm
		doorLoad(b, p.addr, roots, 200*time.Millisecond)
	}
	for b.Loop() {
		n, lat, took := doorLoad(b, bare.addr, roots, doorRound)
		bareN, bareT, bareLat = bareN+n, bareT+took, append(bareLat, lat...)
		n, lat, took = doorLoad(b, door.addr, roots, doorRound)
		doorN, doorT, doorLat = doorN+n, doorT+took, append(doorLat, lat...)
	}
	bareRate, doorRate := float64(bareN)/bareT.Seconds(), float64(doorN)/doorT.Seconds()
	b.ReportMetric(bareRate, "bare-req/s")
	b.ReportMetric(doorRate, "door-req/s")
	b.ReportMetric(doorRate/bareRate, "door/bare")
	bp99, dp99 := percentile(bareLat, 99), percentile(doorLat, 99)
	b.ReportMetric(float64(bp99.Microseconds()), "bare-p99-µs")
	b.ReportMetric(float64(dp99.Microseconds()), "door-p99-µs")
	b.ReportMetric(float64((dp99 - bp99).Microseconds()), "added-p99-µs")
	b.ReportMetric(idleConnsKiB(b, bare, roots), "bare-KiB/1000idle")
	b.ReportMetric(idleConnsKiB(b, door, roots), "door-KiB/1000idle")
}

const (
	doorConns = 32
	doorRound = 2 * time.Second
)

// doorProc is a bench/doorbench process.
type doorProc struct {
	pid  int
	addr string
}

func startDoorBench(tb testing.TB, mode, upstream, certFile, keyFile string) *doorProc {
	tb.Helper()
	bin := binary(tb, "doorbench", "github.com/liftoff-deploy/liftoff/bench/doorbench")
	cmd := exec.Command(bin, "-mode", mode, "-upstream", upstream, "-cert", certFile, "-key", keyFile)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close() // it stops when its stdin closes
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		tb.Fatalf("doorbench -mode %s: %q, %v", mode, line, err)
	}
	return &doorProc{pid: cmd.Process.Pid, addr: addr}
}

// doorTransport reaches addr for bench.example.test over HTTP/1.1 TLS.
func doorTransport(addr string, roots *x509.CertPool, conns int) *http.Transport {
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}},
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
	}
}

// doorLoad sends GET / with doorConns clients back to back for d, and
// returns how many were answered 200, their latencies and how long it took.
func doorLoad(tb testing.TB, addr string, roots *x509.CertPool, d time.Duration) (int, []time.Duration, time.Duration) {
	tb.Helper()
	tr := doorTransport(addr, roots, doorConns)
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var n atomic.Int64
	var failed atomic.Value
	lats := make([][]time.Duration, doorConns)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range doorConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				t0 := time.Now()
				res, err := c.Get("https://bench.example.test/")
				if err == nil {
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				lats[i] = append(lats[i], time.Since(t0))
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if err := failed.Load(); err != nil {
		tb.Fatalf("GET through %s: %v", addr, err)
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return int(n.Load()), all, took
}

// idleConnsKiB opens 1,000 TLS connections to p, 25 at a time, sends one
// request on each and leaves them idle, and returns how much p's resident
// memory grew, in KiB. Few at a time, so that what is measured is the
// idle connections, not a thousand requests in flight.
func idleConnsKiB(tb testing.TB, p *doorProc, roots *x509.CertPool) float64 {
	tb.Helper()
	const conns, batch = 1000, 25
	before := rssKiB(tb, p.pid)
	open := make([]net.Conn, conns)
	defer func() {
		for _, c := range open {
			if c != nil {
				c.Close()
			}
		}
	}()
	cfg := &tls.Config{RootCAs: roots, ServerName: "bench.example.test", NextProtos: []string{"http/1.1"}}
	for i := 0; i < conns; i += batch {
		var wg sync.WaitGroup
		var failed atomic.Value
		for j := i; j < i+batch; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", p.addr, cfg)
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				open[j] = c
				c.SetDeadline(time.Now().Add(10 * time.Second))
				io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench.example.test\r\n\r\n")
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					failed.CompareAndSwap(nil, fmt.Errorf("status %d", res.StatusCode))
				}
			}()
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			tb.Fatalf("idle connections to %s: %v", p.addr, err)
		}
	}
	return float64(rssKiB(tb, p.pid) - before)
}

func rssKiB(tb testing.TB, pid int) int {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				tb.Fatalf("VmRSS %q: %v", v, err)
			}
			return n
		}
	}
	tb.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// benchCert writes a self-signed certificate for host and its key to dir,
// and returns them and a pool that trusts it.
func benchCert(tb testing.TB, dir, host string) (certFile, keyFile string, roots *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "door.pem"), filepath.Join(dir, "door.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		tb.Fatal(err)
	}
	return certFile, keyFile, roots
}
