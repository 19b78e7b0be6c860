package docker

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/docker/go-connections/nat"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// containerConfig turns spec into the three parts of a create request. The
// networking part names only the first network; Create connects the rest.
func containerConfig(spec deploy.Spec) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	if spec.Image == "" {
		return nil, nil, nil, errors.New("no image")
	}
	exposed, bindings, err := ports(spec.Ports)
	if err != nil {
		return nil, nil, nil, err
	}
	restart, err := restartPolicy(spec.Restart)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := &container.Config{
		Image:        spec.Image,
		Env:          spec.Env,
		Labels:       spec.Labels,
		ExposedPorts: exposed,
	}
	if len(spec.Cmd) > 0 {
		cfg.Cmd = spec.Cmd
	}
	if h := spec.Healthcheck; h != nil {
		if len(h.Test) == 0 {
			return nil, nil, nil, errors.New("healthcheck without a test")
		}
		cfg.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, Retries: h.Retries}
	}
	host := &container.HostConfig{
		PortBindings:  bindings,
		RestartPolicy: restart,
	}
	for _, v := range spec.Volumes {
		switch {
		case v == "":
			return nil, nil, nil, errors.New("empty volume")
		case !strings.Contains(v, ":"):
			// "-v /data": an anonymous volume, which the API takes
			// in the config, not as a bind.
			if cfg.Volumes == nil {
				cfg.Volumes = make(map[string]struct{})
			}
			cfg.Volumes[v] = struct{}{}
		default:
			// The engine parses src:dst[:opts] itself, named
			// volumes included.
			host.Binds = append(host.Binds, v)
		}
	}
	applySettings(cfg, host, spec.Settings)
	var nw *network.NetworkingConfig
	switch {
	case len(spec.Networks) > 0:
		host.NetworkMode = container.NetworkMode(spec.Networks[0])
		nw = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			spec.Networks[0]: {Aliases: spec.Aliases},
		}}
	case len(spec.Aliases) > 0:
		return nil, nil, nil, errors.New("network aliases need a network: the default bridge has no aliases")
	}
	return cfg, host, nw, nil
}

// ports parses "docker run -p" specs: [ip:][hostPort:]containerPort[/proto],
// with ranges.
func ports(specs []string) (network.PortSet, network.PortMap, error) {
	if len(specs) == 0 {
		return nil, nil, nil
	}
	exposed, bindings, err := nat.ParsePortSpecs(specs)
	if err != nil {
		return nil, nil, fmt.Errorf("ports %q: %w", specs, err)
	}
	set := make(network.PortSet, len(exposed))
	for p := range exposed {
		port, err := network.ParsePort(string(p))
		if err != nil {
			return nil, nil, fmt.Errorf("port %s: %w", p, err)
		}
		set[port] = struct{}{}
	}
	m := make(network.PortMap, len(bindings))
	for p, bs := range bindings {
		port, err := network.ParsePort(string(p))
		if err != nil {
			return nil, nil, fmt.Errorf("port %s: %w", p, err)
		}
		for _, b := range bs {
			var ip netip.Addr
			if b.HostIP != "" {
				if ip, err = netip.ParseAddr(b.HostIP); err != nil {
					return nil, nil, fmt.Errorf("port %s: %w", p, err)
				}
			}
			m[port] = append(m[port], network.PortBinding{HostIP: ip, HostPort: b.HostPort})
		}
	}
	return set, m, nil
}

// restartPolicy parses "", "no", "always", "unless-stopped" and
// "on-failure[:N]".
func restartPolicy(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	switch p.Name {
	case "":
		p.Name = container.RestartPolicyDisabled
	case container.RestartPolicyDisabled, container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
	case container.RestartPolicyOnFailure:
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return p, fmt.Errorf("restart %q: retry count is no number >= 0", s)
			}
			p.MaximumRetryCount = n
		}
		return p, nil
	default:
		return p, fmt.Errorf("restart %q: want no, always, unless-stopped or on-failure[:N]", s)
	}
	if hasCount {
		return p, fmt.Errorf("restart %q: only on-failure takes a retry count", s)
	}
	return p, nil
}

// applySettings sets the fields docker run sets for each of s: what
// `docker run --memory 512m --user app ...` would send.
func applySettings(cfg *container.Config, host *container.HostConfig, s deployments.Settings) {
	cfg.User = s.User
	cfg.WorkingDir = s.WorkingDir
	cfg.StopSignal = s.StopSignal
	if s.Entrypoint != nil {
		cfg.Entrypoint = s.Entrypoint
	}
	if h := s.Healthcheck; h != nil && cfg.Healthcheck == nil {
		cfg.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries}
	}
	host.Memory = s.Memory
	host.MemoryReservation = s.MemoryReservation
	host.NanoCPUs = s.NanoCPUs
	if s.PidsLimit != 0 {
		n := s.PidsLimit
		host.PidsLimit = &n
	}
	host.ShmSize = s.ShmSize
	if s.LogDriver != "" {
		host.LogConfig = container.LogConfig{Type: s.LogDriver, Config: s.LogOptions}
	}
	if s.Init {
		t := true
		host.Init = &t
	}
	host.ReadonlyRootfs = s.ReadOnly
	host.Tmpfs = s.Tmpfs
	host.CapAdd = s.CapAdd
	host.CapDrop = s.CapDrop
	host.SecurityOpt = s.SecurityOpt
	host.ExtraHosts = s.ExtraHosts
	for _, u := range s.Ulimits {
		host.Ulimits = append(host.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
}
