package daemon

import (
	"crypto/tls"
	"fmt"
	"net"

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
