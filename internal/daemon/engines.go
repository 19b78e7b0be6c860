package daemon

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/docker"
)

// openEngines opens a client of each engine of cfg: docker_host (the
// local engine) and each of engines. Nothing is dialled yet: an engine
// that does not answer makes only its deployments wait (see
// deploy.Engine.Watch). Engines apply at start-up only (see restartOnly).
func openEngines(cfg *deployments.Config, reg prometheus.Registerer, log zerolog.Logger) (*docker.Client, map[string]*docker.Client, error) {
	local, err := docker.Open(docker.Engine{Name: deployments.LocalEngine, Host: cfg.DockerHost, Insecure: cfg.DockerHostInsecure}, reg,
		log.With().Str("engine", deployments.LocalEngine).Logger())
	if err != nil {
		return nil, nil, fmt.Errorf("docker_host: %w", err)
	}
	if cfg.DockerHostInsecure {
		if h := local.Host(); deployments.PlainRemoteTCP(h) {
			log.Warn().Str("engine", deployments.LocalEngine).Str("host", h).
				Msg("INSECURE ENGINE: docker_host is plain tcp:// to another host without TLS (docker_host_insecure: true): Docker API calls, root on that host, and registry passwords cross the network unencrypted; keep it on a private network only this liftoff reaches (a socket proxy's internal network), or use TLS or ssh://")
		}
	}
	others := map[string]*docker.Client{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Engines)) {
		e := cfg.Engines[name]
		c, err := docker.Open(docker.Engine{Name: name, Host: e.Host, TLSCA: e.TLSCA, TLSCert: e.TLSCert, TLSKey: e.TLSKey, Insecure: e.Insecure}, reg,
			log.With().Str("engine", name).Logger())
		if err != nil {
			local.Close()
			for _, c := range others {
				c.Close()
			}
			return nil, nil, fmt.Errorf("engines.%s: %w", name, err)
		}
		others[name] = c
		if e.Insecure {
			log.Warn().Str("engine", name).Str("host", e.Host).
				Msg("INSECURE ENGINE: plain tcp:// to another host without TLS (insecure: true): Docker API calls, root on that host, and registry passwords cross the network unencrypted; anyone on the path can read them or take the host over. Set tls_ca/tls_cert/tls_key or reach it over ssh://")
		}
	}
	return local, others, nil
}

// runtimes is the deploy engine's view of the other engines.
func runtimes(cs map[string]*docker.Client) map[string]deploy.Runtime {
	m := make(map[string]deploy.Runtime, len(cs))
	for name, c := range cs {
		m[name] = c
	}
	return m
}

// closeEngines closes the client of every engine.
func (a *Daemon) closeEngines() {
	a.docker.Close()
	for _, c := range a.engines {
		c.Close()
	}
}

// pingEngines logs which engines do not answer at start-up, pinging them
// all at once.
func (a *Daemon) pingEngines(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	all := maps.Clone(a.engines)
	if all == nil {
		all = map[string]*docker.Client{}
	}
	all[deployments.LocalEngine] = a.docker
	var wg sync.WaitGroup
	for name, c := range all {
		wg.Go(func() {
			if err := c.Ping(pctx); err != nil {
				a.log.Warn().Err(err).Str("engine", name).
					Msg("Docker engine does not answer yet; /readyz fails and its deployments wait until it does")
			}
		})
	}
	wg.Wait()
}
