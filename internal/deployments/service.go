package deployments

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/docker/go-connections/nat"
)

// Service is deployments[].service: the deployment runs as a Docker Swarm
// service on its engine (a swarm manager) instead of a container. liftoff
// creates the service, or updates it to the new digest and environment,
// and waits for Swarm's rolling update; scheduling, replicas, the update's
// order and its rollback are Swarm's.
type Service struct {
	// Replicas is how many tasks run (default 1).
	Replicas uint64 `yaml:"replicas"`
	// Update is how Swarm rolls a new version out.
	Update ServiceUpdate `yaml:"update"`
}

// ServiceUpdate is a service's update config, as docker service update's
// --update-* flags.
type ServiceUpdate struct {
	// Parallelism is how many tasks are updated at once (default 1).
	Parallelism uint64 `yaml:"parallelism"`
	// Delay is the pause between two batches (default 0s).
	Delay time.Duration `yaml:"delay"`
	// Order is start-first (the default: a new task starts before an old
	// one stops) or stop-first.
	Order string `yaml:"order"`
	// Monitor is how long each new task is watched for a failure after it
	// started (default 10s).
	Monitor time.Duration `yaml:"monitor"`
	// FailureAction is what Swarm does when a task fails within Monitor:
	// rollback (the default), pause or continue.
	FailureAction string `yaml:"failure_action"`
}

// Service defaults.
const (
	DefaultServiceMonitor = 10 * time.Second
)

func (s *Service) fillDefaults() {
	if s.Replicas == 0 {
		s.Replicas = 1
	}
	if s.Update.Parallelism == 0 {
		s.Update.Parallelism = 1
	}
	if s.Update.Order == "" {
		s.Update.Order = StartFirst
	}
	if s.Update.Monitor == 0 {
		s.Update.Monitor = DefaultServiceMonitor
	}
	if s.Update.FailureAction == "" {
		s.Update.FailureAction = "rollback"
	}
}

// checkService checks a deployment that is a service: what a container
// spec says that a service cannot do is an error, not silently dropped.
// strategyGiven tells that the file set strategy, which a service leaves
// to update.order.
func (c *Config) checkService(p *problems, at string, d *Deployment, strategyGiven bool) {
	s := d.Service
	s.fillDefaults()
	if s.Update.Delay < 0 {
		p.addf(at+".update.delay", "must not be negative")
	}
	if s.Update.Monitor < 0 {
		p.addf(at+".update.monitor", "must be positive, e.g. 10s")
	}
	switch s.Update.Order {
	case StartFirst, StopFirst:
	default:
		p.addf(at+".update.order", "unknown order %s: want start-first or stop-first", p.quote(at+".update.order", s.Update.Order))
	}
	switch s.Update.FailureAction {
	case "rollback", "pause", "continue":
	default:
		p.addf(at+".update.failure_action", "unknown action %s: want rollback, pause or continue", p.quote(at+".update.failure_action", s.Update.FailureAction))
	}
	dp := d.path
	if strategyGiven {
		p.addf(dp+".strategy", "a service is updated by Swarm: set service.update.order (start-first or stop-first) instead")
	}
	if d.Proxy != nil {
		p.addf(dp+".proxy", "a service is reached through Swarm's routing mesh (container.ports): it cannot have a proxy")
	}
	if d.Container.ReplaceUnmanaged {
		p.addf(dp+".container.replace_unmanaged", "applies to containers, not to services")
	}
	if d.Compose != nil {
		p.addf(dp+".compose", "a service deployment takes its spec from container: (a compose service becomes a container)")
		return
	}
	for _, k := range givenSettings(&d.Container) {
		p.addf(dp+".container."+k, "applies to containers: liftoff does not set it on a service's tasks")
	}
	if d.Health.URL != "" {
		p.addf(dp+".health.url", "a service's tasks are checked by Swarm: use health.cmd (it becomes the service's healthcheck)")
	}
	for j, spec := range d.Container.Ports {
		pp := fmt.Sprintf("%s.container.ports[%d]", dp, j)
		maps, err := nat.ParsePortSpec(spec)
		if err != nil {
			continue // reported by checkPorts
		}
		for _, m := range maps {
			if ip := m.Binding.HostIP; ip != "" {
				if a, err := netip.ParseAddr(ip); err != nil || !a.IsUnspecified() {
					p.addf(pp, "a service publishes on every address of every node (Swarm's routing mesh): drop %s", ip)
					break
				}
			}
			if m.Binding.HostPort == "" || strings.Contains(m.Binding.HostPort, "-") {
				p.addf(pp, "a service needs a single host port: hostPort:containerPort")
				break
			}
		}
	}
}
