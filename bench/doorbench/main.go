// Command doorbench serves HTTPS on 127.0.0.1 in front of one upstream,
// for bench's front door benchmark (frontdoor_test.go): either liftoff's
// front door (internal/proxy with a Door: TLS from certificate files, one
// route by Host, its metrics registered) or the yardstick, a bare Go TLS
// reverse proxy (net/http/httputil.ReverseProxy behind an http.Server with
// the same certificate, HTTP/2 on, nothing else).
//
//	doorbench -mode door|bare -upstream HOST:PORT -cert FILE -key FILE
//
// It prints "listening ADDR" on stdout once it accepts connections, and
// stops when its stdin closes. Run it with GOMAXPROCS=1 to measure one
// core.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/proxy"
)

func main() {
	mode := flag.String("mode", "door", "door (liftoff's front door) or bare (httputil.ReverseProxy)")
	upstream := flag.String("upstream", "", "the upstream's host:port")
	certFile := flag.String("cert", "", "the certificate's PEM file")
	keyFile := flag.String("key", "", "the key's PEM file")
	flag.Parse()
	if *upstream == "" || *certFile == "" || *keyFile == "" {
		fmt.Fprintln(os.Stderr, "doorbench: -upstream, -cert and -key are required")
		os.Exit(2)
	}
	var addr string
	var stop func()
	switch *mode {
	case "door":
		p := proxy.New(proxy.Options{Logger: zerolog.Nop(), Registerer: prometheus.NewRegistry()})
		door := proxy.Door{Listen: "127.0.0.1:0", TLS: &proxy.DoorTLS{CertFile: *certFile, KeyFile: *keyFile}}
		if err := p.Apply(door, []proxy.Route{{Deployment: "web", Hosts: []string{"bench.example.test"}}}); err != nil {
			fmt.Fprintln(os.Stderr, "doorbench:", err)
			os.Exit(1)
		}
		p.Switch("web", *upstream)
		addr = p.DoorAddr().String()
		stop = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			p.Close(ctx)
		}
	case "bare":
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "doorbench:", err)
			os.Exit(1)
		}
		target := &url.URL{Scheme: "http", Host: *upstream}
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(target)
				pr.Out.Host = pr.In.Host
				pr.SetXForwarded()
			},
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 128},
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "doorbench:", err)
			os.Exit(1)
		}
		srv := &http.Server{Handler: rp, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 10 * time.Second}
		go srv.ServeTLS(ln, "", "")
		addr = ln.Addr().String()
		stop = func() { srv.Close() }
	default:
		fmt.Fprintf(os.Stderr, "doorbench: unknown -mode %q: want door or bare\n", *mode)
		os.Exit(2)
	}
	fmt.Printf("listening %s\n", addr)
	io.Copy(io.Discard, os.Stdin)
	stop()
}
