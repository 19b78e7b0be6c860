package daemon

import (
	"context"
	"fmt"
	"maps"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Reload loads and validates the config file again and, only if all of it
// is valid, swaps it in atomically: the next deploy uses it, the one in
// flight keeps the one it started with. An invalid file keeps the old
// config. Deployments removed from the file are left running.
func (a *Daemon) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cfg, err := deployments.Load(a.opts.ConfigPath, a.opts.Lookup)
	if err != nil {
		a.reloadOK.Set(0)
		a.log.Error().Err(err).Str("config", a.opts.ConfigPath).Msg("reload failed; keeping the running configuration")
		return err
	}
	cfg = a.override(cfg)
	// The front doors first: a listen address that cannot be opened, or
	// front_door's certificate files that no longer load, fail the
	// reload, and the running configuration stays. Files that load are
	// read again: a reload is how a renewed certificate is picked up.
	if err := a.applyProxy(cfg); err != nil {
		a.reloadOK.Set(0)
		a.log.Error().Err(err).Str("config", a.opts.ConfigPath).Msg("reload failed; keeping the running configuration")
		return fmt.Errorf("proxy: %w", err)
	}
	old := a.cfg.Load()
	for _, k := range restartOnly(old, cfg) {
		a.log.Warn().Str("key", k).Msg("reload: this setting changed but applies only after a restart")
	}
	a.cfg.Store(cfg)
	a.engine.ServeNew(context.Background())
	a.poller.Replan() // seen and delivered digests are kept
	a.reloadOK.Set(1)
	a.reloadTS.SetToCurrentTime()
	a.log.Info().Str("config", a.opts.ConfigPath).Int("deployments", len(cfg.Deployments)).Msg("configuration reloaded")
	return nil
}

// restartOnly names the settings that differ between two configs but are
// read only at start-up.
func restartOnly(old, cfg *deployments.Config) []string {
	var keys []string
	for _, k := range []struct {
		key      string
		old, new any
	}{
		{"listen", old.Listen, cfg.Listen},
		{"metrics_listen", old.MetricsListen, cfg.MetricsListen},
		{"api_listen", old.APIListen, cfg.APIListen},
		{"tls_cert", old.TLSCert, cfg.TLSCert},
		{"tls_key", old.TLSKey, cfg.TLSKey},
		{"docker_host", old.DockerHost, cfg.DockerHost},
		{"docker_host_insecure", old.DockerHostInsecure, cfg.DockerHostInsecure},
		{"history", old.History, cfg.History},
		{"hook_rate_limit", old.HookRateLimit, cfg.HookRateLimit},
	} {
		if k.old != k.new {
			keys = append(keys, k.key)
		}
	}
	// A client per engine is opened at start-up (see openEngines).
	if !maps.Equal(old.Engines, cfg.Engines) {
		keys = append(keys, "engines")
	}
	return keys
}
