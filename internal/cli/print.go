package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	units "github.com/docker/go-units"
	"go.yaml.in/yaml/v3"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// runView is a deployment's container as a deploy creates it, for
// `liftoff validate --print`.
type runView struct {
	Deployment  string            `yaml:"deployment"`
	Image       string            `yaml:"image"`
	Compose     string            `yaml:"compose,omitempty"`
	Container   string            `yaml:"container"`
	Entrypoint  []string          `yaml:"entrypoint,omitempty"`
	Command     []string          `yaml:"command,omitempty"`
	Env         []string          `yaml:"env,omitempty"`
	Ports       []string          `yaml:"ports,omitempty"`
	Volumes     []string          `yaml:"volumes,omitempty"`
	Tmpfs       []string          `yaml:"tmpfs,omitempty"`
	Networks    []string          `yaml:"networks,omitempty"`
	Aliases     []string          `yaml:"aliases,omitempty"`
	Restart     string            `yaml:"restart,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Healthcheck string            `yaml:"healthcheck,omitempty"`
	StopSignal  string            `yaml:"stop_signal,omitempty"`
	StopTimeout string            `yaml:"stop_timeout"`
	User        string            `yaml:"user,omitempty"`
	WorkingDir  string            `yaml:"working_dir,omitempty"`
	Memory      string            `yaml:"memory,omitempty"`
	Reservation string            `yaml:"memory_reservation,omitempty"`
	CPUs        string            `yaml:"cpus,omitempty"`
	PidsLimit   int64             `yaml:"pids_limit,omitempty"`
	ShmSize     string            `yaml:"shm_size,omitempty"`
	Logging     string            `yaml:"logging,omitempty"`
	Init        bool              `yaml:"init,omitempty"`
	ReadOnly    bool              `yaml:"read_only,omitempty"`
	CapAdd      []string          `yaml:"cap_add,omitempty"`
	CapDrop     []string          `yaml:"cap_drop,omitempty"`
	SecurityOpt []string          `yaml:"security_opt,omitempty"`
	ExtraHosts  []string          `yaml:"extra_hosts,omitempty"`
	Ulimits     []string          `yaml:"ulimits,omitempty"`
}

// printDeployments writes each deployment's runView, one YAML document
// each; an app of several processes, one per replica of each process
// ("dblood/web.1"). Values of secret variables are replaced by "(secret)".
func printDeployments(w io.Writer, cfg *deployments.Config) error {
	var ds []*deployments.Deployment
	for i := range cfg.Deployments {
		d := &cfg.Deployments[i]
		if !d.HasProcesses() {
			ds = append(ds, d)
			continue
		}
		for _, u := range d.Units() {
			ds = append(ds, u.Deployment)
		}
	}
	for _, d := range ds {
		ct, s := &d.Container, d.Container.Settings()
		v := runView{
			Deployment:  d.Name,
			Image:       d.Image + "@<the pushed digest>",
			Container:   d.ContainerName(),
			Entrypoint:  s.Entrypoint,
			Command:     ct.Command,
			Ports:       ct.Ports,
			Volumes:     ct.Volumes,
			Networks:    ct.Networks,
			Aliases:     ct.Aliases,
			Restart:     ct.Restart,
			Labels:      ct.Labels,
			StopSignal:  s.StopSignal,
			StopTimeout: d.StopTimeout.String(),
			User:        s.User,
			WorkingDir:  s.WorkingDir,
			PidsLimit:   s.PidsLimit,
			Init:        s.Init,
			ReadOnly:    s.ReadOnly,
			CapAdd:      s.CapAdd,
			CapDrop:     s.CapDrop,
			SecurityOpt: s.SecurityOpt,
			ExtraHosts:  s.ExtraHosts,
		}
		if cm := d.Compose; cm != nil {
			v.Compose = cm.File + " service " + cm.Service
			if cm.Service == "" {
				v.Compose += d.Name
			}
			v.Compose += " (project " + ct.Labels[deployments.ComposeProjectLabel] + ")"
		}
		if d.Service != nil {
			v.Container = d.ContainerName() + " (a Swarm service)"
		}
		env, err := cfg.Env(d, nil)
		if err != nil {
			return err
		}
		secret := cfg.SecretKeys(d)
		for _, kv := range env {
			k, _, _ := strings.Cut(kv, "=")
			if secret[k] {
				kv = k + "=(secret)"
			}
			v.Env = append(v.Env, kv)
		}
		for _, dst := range slices.Sorted(maps.Keys(s.Tmpfs)) {
			if o := s.Tmpfs[dst]; o != "" {
				v.Tmpfs = append(v.Tmpfs, dst+":"+o)
			} else {
				v.Tmpfs = append(v.Tmpfs, dst)
			}
		}
		switch {
		case len(d.Health.Cmd) > 0:
			v.Healthcheck = fmt.Sprintf("%q every %s, %d retries (health.cmd)", d.Health.Cmd, d.Health.Interval, d.Health.Retries)
		case s.Healthcheck != nil:
			h := s.Healthcheck
			v.Healthcheck = fmt.Sprintf("%q every %s, timeout %s, start period %s, %d retries", h.Test, h.Interval, h.Timeout, h.StartPeriod, h.Retries)
		}
		if s.Memory > 0 {
			v.Memory = units.BytesSize(float64(s.Memory))
		}
		if s.MemoryReservation > 0 {
			v.Reservation = units.BytesSize(float64(s.MemoryReservation))
		}
		if s.NanoCPUs > 0 {
			v.CPUs = fmt.Sprintf("%g", float64(s.NanoCPUs)/1e9)
		}
		if s.ShmSize > 0 {
			v.ShmSize = units.BytesSize(float64(s.ShmSize))
		}
		if s.LogDriver != "" {
			v.Logging = s.LogDriver
			for _, k := range slices.Sorted(maps.Keys(s.LogOptions)) {
				v.Logging += " " + k + "=" + s.LogOptions[k]
			}
		}
		for _, u := range s.Ulimits {
			v.Ulimits = append(v.Ulimits, fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
		}
		out, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "---\n%s", out)
	}
	return nil
}
