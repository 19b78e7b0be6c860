package proxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// BenchmarkProxyOverhead measures what the proxy adds to a small request on
// an idle machine: each iteration sends one request straight to the
// upstream and one through the proxy, one after the other over keep-alive
// connections, and it reports the percentiles of both and their difference.
//
//	go test -run '^$' -bench ProxyOverhead -benchtime 20000x ./internal/proxy/
func BenchmarkProxyOverhead(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	p := New(Options{Logger: zerolog.Nop(), Registerer: prometheus.NewRegistry()})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		p.Close(ctx)
	}()
	if err := p.Configure([]Route{web()}); err != nil {
		b.Fatal(err)
	}
	p.Switch("web", up.Listener.Addr().String())
	direct, proxied := up.URL+"/", "http://"+p.Addr("web").String()+"/"

	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: deadline}
	get := func(url string) time.Duration {
		start := time.Now()
		res, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d", url, res.StatusCode)
		}
		return time.Since(start)
	}
	for range 100 { // connections open, pools warm
		get(direct)
		get(proxied)
	}

	var d, v []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		d = append(d, get(direct))
		v = append(v, get(proxied))
	}
	slices.Sort(d)
	slices.Sort(v)
	at := func(s []time.Duration, q float64) float64 {
		return float64(s[int(q*float64(len(s)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(d, 0.5), "direct-p50-µs")
	b.ReportMetric(at(d, 0.99), "direct-p99-µs")
	b.ReportMetric(at(v, 0.5), "proxy-p50-µs")
	b.ReportMetric(at(v, 0.99), "proxy-p99-µs")
	b.ReportMetric(at(v, 0.5)-at(d, 0.5), "added-p50-µs")
	b.ReportMetric(at(v, 0.99)-at(d, 0.99), "added-p99-µs")
}
