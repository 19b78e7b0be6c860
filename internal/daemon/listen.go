package daemon

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// listen opens the listeners now, so that a port in use fails start-up and
// tests know the address before Run.
func (a *Daemon) listen(cfg *deployments.Config) error {
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("tls_cert: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	// listen and api_listen carry secrets (hook tokens, API tokens): both
	// serve HTTPS when tls_cert is set.
	open := func(key, addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if tlsConfig != nil {
			ln = tls.NewListener(ln, tlsConfig)
		}
		return ln, nil
	}
	var err error
	if a.ln, err = open("listen", cfg.Listen); err != nil {
		return err
	}
	if cfg.APIListen != "" {
		if a.apiLn, err = open("api_listen", cfg.APIListen); err != nil {
			return err
		}
	}
	if cfg.MetricsListen != "" {
		if a.metricsLn, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
	}
	return nil
}

// logListeners says at start-up, one line per listener, which address
// serves what, and warns when the API or /metrics is on every interface.
func (a *Daemon) logListeners(cfg *deployments.Config) {
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	main := []string{"/hooks/", "/healthz", "/readyz", "/-/reload (loopback clients only)"}
	if a.metricsLn == nil {
		main = append(main, "/metrics")
	}
	api := []string{"/api/v1", "the status page (/)"}
	if !cfg.APIEnabled() {
		api = nil // no api_tokens: every /api/ path is 404
	}
	if a.apiLn == nil {
		main = append(main, api...)
	}
	line := func(key string, ln net.Listener, scheme string, serves []string) {
		addr := ln.Addr().String()
		ev := a.log.Info()
		if everyInterface(ln) && (slices.Contains(serves, "/metrics") || slices.Contains(serves, "/api/v1")) {
			ev = a.log.Warn().Str("why", "on every interface: keep /metrics and the API private (see docs/SECURITY.md)")
		}
		ev.Str("key", key).Str("address", scheme+"://"+addr).Strs("serves", serves).Msg("listening")
	}
	line("listen", a.ln, scheme, main)
	if a.apiLn != nil {
		line("api_listen", a.apiLn, scheme, api)
	}
	if a.metricsLn != nil {
		line("metrics_listen", a.metricsLn, "http", []string{"/metrics"})
	}
	a.logFrontDoors(cfg)
}

// logFrontDoors says which address the front doors serve, and what: the
// shared one's hosts, and each proxy's own listen.
func (a *Daemon) logFrontDoors(cfg *deployments.Config) {
	if a.proxy == nil {
		return
	}
	line := func(key string, addr net.Addr, scheme string, serves []string) {
		a.log.Info().Str("key", key).Str("address", scheme+"://"+addr.String()).Strs("serves", serves).Msg("listening")
	}
	var hosts []string
	for i := range cfg.Deployments {
		d := &cfg.Deployments[i]
		if d.Proxy == nil {
			continue
		}
		if d.Proxy.Listen != "" {
			if addr := a.proxy.Addr(d.Name); addr != nil {
				line(fmt.Sprintf("deployments[%d].proxy.listen", i), addr, "http", []string{"deployment " + d.Name})
			}
			continue
		}
		for _, h := range d.Proxy.Hosts {
			hosts = append(hosts, h+d.Proxy.PathPrefix+" (deployment "+d.Name+")")
		}
	}
	if addr := a.proxy.DoorAddr(); addr != nil {
		scheme := "http"
		if cfg.FrontDoorTLS() {
			scheme = "https"
		}
		line("front_door.listen", addr, scheme, hosts)
	}
	if addr := a.proxy.HTTPAddr(); addr != nil {
		line("front_door.http_listen", addr, "http", []string{"ACME HTTP-01 challenges", "a redirect to https for the rest"})
	}
}

// everyInterface tells whether ln listens on the unspecified address
// (":8080", "0.0.0.0:8080", "[::]:8080").
func everyInterface(ln net.Listener) bool {
	tcp, ok := ln.Addr().(*net.TCPAddr)
	return ok && tcp.IP.IsUnspecified()
}
