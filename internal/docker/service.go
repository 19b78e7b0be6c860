package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-connections/nat"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

var _ deploy.Services = (*Client)(nil)

// SwarmManager tells whether the engine is an active swarm manager, the
// only kind of engine that creates and updates services.
func (c *Client) SwarmManager(ctx context.Context) error {
	res, err := c.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return c.fail("service", fmt.Errorf("docker info %s: %w", c.cli.DaemonHost(), engineErr(err)))
	}
	sw := res.Info.Swarm
	switch {
	case sw.LocalNodeState == swarm.LocalNodeStateActive && sw.ControlAvailable:
		return nil
	case sw.LocalNodeState == swarm.LocalNodeStateActive:
		return errors.New("the engine is a swarm worker: services are created and updated on a manager")
	case sw.LocalNodeState == swarm.LocalNodeStateInactive || sw.LocalNodeState == "":
		return errors.New("the engine is not part of a swarm (docker swarm init makes it a single-node one)")
	case sw.Error != "":
		return fmt.Errorf("the engine's swarm is %s: %s", sw.LocalNodeState, sw.Error)
	}
	return fmt.Errorf("the engine's swarm is %s", sw.LocalNodeState)
}

// InspectService returns the service with that name, with its tasks
// counted; one that does not exist is deploy.ErrNotFound.
func (c *Client) InspectService(ctx context.Context, name string) (deploy.Service, error) {
	s, err := c.service(ctx, name)
	if err != nil {
		return deploy.Service{}, c.fail("service", err)
	}
	out := deploy.Service{ID: s.ID, Name: s.Spec.Name, Labels: s.Spec.Labels, Since: s.CreatedAt}
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		out.Image = cs.Image
	}
	if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		out.Replicas = *r.Replicas
	}
	if u := s.UpdateStatus; u != nil {
		out.UpdateState, out.UpdateMessage = string(u.State), u.Message
		if u.CompletedAt != nil {
			out.Since = *u.CompletedAt
		}
	}
	f := client.Filters{}
	f.Add("service", s.ID)
	tasks, err := c.cli.TaskList(ctx, client.TaskListOptions{Filters: f})
	if err != nil {
		return deploy.Service{}, c.fail("service", fmt.Errorf("list tasks of service %s: %w", name, engineErr(err)))
	}
	var ended time.Time
	for _, t := range tasks.Items {
		// Tasks of the spec: its image, and its force-update count (a
		// forced update replaces tasks of the same image).
		if t.Spec.ContainerSpec == nil || t.Spec.ContainerSpec.Image != out.Image || t.Spec.ForceUpdate != s.Spec.TaskTemplate.ForceUpdate {
			continue
		}
		switch st := t.Status.State; st {
		case swarm.TaskStateRunning:
			if t.DesiredState == swarm.TaskStateRunning {
				out.Running++
			}
		case swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateComplete, swarm.TaskStateOrphaned:
			if t.Status.Timestamp.After(ended) {
				ended = t.Status.Timestamp
				why := t.Status.Err
				if why == "" {
					why = t.Status.Message
				}
				out.TaskError = fmt.Sprintf("%s: %s", st, why)
			}
		}
	}
	return out, nil
}

// service inspects the service with that name: the engine also takes an
// id or an id's prefix, which must not stand for the name.
func (c *Client) service(ctx context.Context, name string) (swarm.Service, error) {
	res, err := c.cli.ServiceInspect(ctx, name, client.ServiceInspectOptions{})
	switch {
	case err != nil:
		return swarm.Service{}, fmt.Errorf("inspect service %s: %w", name, engineErr(err))
	case res.Service.Spec.Name != name:
		return swarm.Service{}, fmt.Errorf("inspect service %s: %w", name, deploy.ErrNotFound)
	}
	return res.Service, nil
}

// DeployService creates the service of spec, or updates the service of
// that name to it at the version just inspected (once more if another
// update came in between: "update out of sequence"). The image is used as
// given, pinned to its digest: the registry is not asked again.
func (c *Client) DeployService(ctx context.Context, spec deploy.ServiceSpec) (string, bool, error) {
	ss, err := serviceSpec(spec)
	if err != nil {
		return "", false, fmt.Errorf("service %s: %w", spec.Name, err)
	}
	creds, err := fetchAuth(ctx, spec.Auth) // no retry: the nodes pull later
	if err != nil {
		return "", false, fmt.Errorf("service %s: %w", spec.Name, err)
	}
	auth, err := encodeAuth(creds, spec.Image)
	if err != nil {
		return "", false, fmt.Errorf("service %s: %w", spec.Name, err)
	}
	for try := 1; ; try++ {
		cur, err := c.service(ctx, spec.Name)
		if errors.Is(err, deploy.ErrNotFound) {
			res, err := c.cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: ss, EncodedRegistryAuth: auth})
			if err != nil {
				return "", false, c.fail("service", redact(fmt.Errorf("create service %s: %w", spec.Name, engineErr(err)), creds))
			}
			c.warn(spec.Name, res.Warnings)
			c.log.Debug().Str("service", spec.Name).Str("id", res.ID).Str("image", spec.Image).Msg("created service")
			return res.ID, false, nil
		}
		if err != nil {
			return "", false, c.fail("service", err)
		}
		// Swarm replaces the tasks when the force-update count changes;
		// kept as it is, an unchanged spec changes nothing.
		ss.TaskTemplate.ForceUpdate = cur.Spec.TaskTemplate.ForceUpdate
		if spec.Force {
			ss.TaskTemplate.ForceUpdate++
		}
		res, err := c.cli.ServiceUpdate(ctx, cur.ID, client.ServiceUpdateOptions{Version: cur.Version, Spec: ss, EncodedRegistryAuth: auth})
		if err != nil && try == 1 && strings.Contains(err.Error(), "update out of sequence") {
			continue
		}
		if err != nil {
			return "", false, c.fail("service", redact(fmt.Errorf("update service %s: %w", spec.Name, engineErr(err)), creds))
		}
		c.warn(spec.Name, res.Warnings)
		c.log.Debug().Str("service", spec.Name).Str("id", cur.ID).Str("image", spec.Image).Bool("force", spec.Force).Msg("updated service")
		return cur.ID, true, nil
	}
}

func (c *Client) warn(service string, warnings []string) {
	for _, w := range warnings {
		c.log.Warn().Str("service", service).Str("warning", w).Msg("docker service")
	}
}

// RemoveService removes the service with that name; its tasks' containers
// are stopped and removed by the engine. A service that is gone is not an
// error.
func (c *Client) RemoveService(ctx context.Context, name string) error {
	s, err := c.service(ctx, name)
	if errors.Is(err, deploy.ErrNotFound) {
		return nil
	}
	if err != nil {
		return c.fail("service", err)
	}
	if _, err := c.cli.ServiceRemove(ctx, s.ID, client.ServiceRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return c.fail("service", fmt.Errorf("remove service %s: %w", name, engineErr(err)))
	}
	return nil
}

// serviceSpec turns spec into Swarm's service spec.
func serviceSpec(spec deploy.ServiceSpec) (swarm.ServiceSpec, error) {
	if spec.Image == "" {
		return swarm.ServiceSpec{}, errors.New("no image")
	}
	cs := &swarm.ContainerSpec{Image: spec.Image, Labels: spec.Labels, Env: spec.Env, Args: spec.Cmd}
	if spec.StopGrace > 0 {
		grace := spec.StopGrace
		cs.StopGracePeriod = &grace
	}
	if h := spec.Healthcheck; h != nil {
		if len(h.Test) == 0 {
			return swarm.ServiceSpec{}, errors.New("healthcheck without a test")
		}
		cs.Healthcheck = &container.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout, Retries: h.Retries}
	}
	var err error
	if cs.Mounts, err = mounts(spec.Volumes); err != nil {
		return swarm.ServiceSpec{}, err
	}
	restart, err := serviceRestart(spec.Restart)
	if err != nil {
		return swarm.ServiceSpec{}, err
	}
	ports, err := publish(spec.Ports)
	if err != nil {
		return swarm.ServiceSpec{}, err
	}
	if len(spec.Aliases) > 0 && len(spec.Networks) == 0 {
		return swarm.ServiceSpec{}, errors.New("network aliases need a network")
	}
	var nets []swarm.NetworkAttachmentConfig
	for _, n := range spec.Networks {
		nets = append(nets, swarm.NetworkAttachmentConfig{Target: n, Aliases: spec.Aliases})
	}
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, spec.ServiceLabels)
	replicas := spec.Replicas
	u := spec.Update
	update := &swarm.UpdateConfig{Parallelism: u.Parallelism, Delay: u.Delay, Monitor: u.Monitor,
		FailureAction: swarm.FailureAction(u.FailureAction), Order: swarm.UpdateOrder(u.Order)}
	// A rollback cannot roll back: one that fails pauses.
	back := *update
	if back.FailureAction == swarm.UpdateFailureActionRollback {
		back.FailureAction = swarm.UpdateFailureActionPause
	}
	ss := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: spec.Name, Labels: labels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: cs,
			RestartPolicy: restart,
			Networks:      nets,
		},
		Mode:           swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		UpdateConfig:   update,
		RollbackConfig: &back,
	}
	if len(ports) > 0 {
		ss.EndpointSpec = &swarm.EndpointSpec{Mode: swarm.ResolutionModeVIP, Ports: ports}
	}
	return ss, nil
}

// publish turns "docker run -p" specs into ports published by Swarm's
// routing mesh, on every node: hostPort:containerPort[/proto] (an address
// other than 0.0.0.0 is no service's).
func publish(specs []string) ([]swarm.PortConfig, error) {
	var out []swarm.PortConfig
	for _, s := range specs {
		maps, err := nat.ParsePortSpec(s)
		if err != nil {
			return nil, fmt.Errorf("port %q: %w", s, err)
		}
		for _, m := range maps {
			if ip := m.Binding.HostIP; ip != "" && ip != "0.0.0.0" && ip != "::" {
				return nil, fmt.Errorf("port %q: a service publishes on every address of every node, not on %s", s, ip)
			}
			target, err := strconv.ParseUint(m.Port.Port(), 10, 16)
			if err != nil {
				return nil, fmt.Errorf("port %q: %w", s, err)
			}
			published, err := strconv.ParseUint(m.Binding.HostPort, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("port %q: a service needs a single host port (hostPort:containerPort)", s)
			}
			out = append(out, swarm.PortConfig{Protocol: network.IPProtocol(m.Port.Proto()), TargetPort: uint32(target),
				PublishedPort: uint32(published), PublishMode: swarm.PortConfigPublishModeIngress})
		}
	}
	return out, nil
}

// mounts turns "docker run -v" specs into mounts: an absolute source is a
// bind mount, another a named volume, none an anonymous volume. Options:
// ro, rw, nocopy (volumes) and the bind propagations.
func mounts(specs []string) ([]mount.Mount, error) {
	var out []mount.Mount
	for _, v := range specs {
		parts := strings.Split(v, ":")
		var m mount.Mount
		switch len(parts) {
		case 1:
			m = mount.Mount{Type: mount.TypeVolume, Target: parts[0]}
		case 2, 3:
			m = mount.Mount{Type: mount.TypeVolume, Source: parts[0], Target: parts[1]}
			if filepath.IsAbs(parts[0]) {
				m.Type = mount.TypeBind
			}
		default:
			return nil, fmt.Errorf("volume %q: want src:dst[:opts]", v)
		}
		if m.Target == "" || !filepath.IsAbs(m.Target) {
			return nil, fmt.Errorf("volume %q: the target must be an absolute path", v)
		}
		if len(parts) == 3 {
			for _, o := range strings.Split(parts[2], ",") {
				switch p := mount.Propagation(o); {
				case o == "ro":
					m.ReadOnly = true
				case o == "rw":
				case o == "nocopy" && m.Type == mount.TypeVolume:
					m.VolumeOptions = &mount.VolumeOptions{NoCopy: true}
				case m.Type == mount.TypeBind && (p == mount.PropagationPrivate || p == mount.PropagationRPrivate ||
					p == mount.PropagationShared || p == mount.PropagationRShared || p == mount.PropagationSlave || p == mount.PropagationRSlave):
					m.BindOptions = &mount.BindOptions{Propagation: p}
				default:
					return nil, fmt.Errorf("volume %q: option %q is not supported for a service's mount", v, o)
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// serviceRestart turns a container's restart policy into a task's: "" is
// Swarm's default (restart on any exit), no is none, always and
// unless-stopped are any, on-failure[:N] is on-failure (N times at most).
func serviceRestart(s string) (*swarm.RestartPolicy, error) {
	p, err := restartPolicy(s)
	if err != nil {
		return nil, err
	}
	switch {
	case s == "":
		return nil, nil
	case p.Name == container.RestartPolicyDisabled:
		return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}, nil
	case p.Name == container.RestartPolicyOnFailure:
		r := &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure}
		if p.MaximumRetryCount > 0 {
			n := uint64(p.MaximumRetryCount)
			r.MaxAttempts = &n
		}
		return r, nil
	}
	return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}, nil
}
