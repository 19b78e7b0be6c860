package docker

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// Inspect returns the container with that name or id; one that does not
// exist is deploy.ErrNotFound.
func (c *Client) Inspect(ctx context.Context, nameOrID string) (deploy.Container, error) {
	res, err := c.cli.ContainerInspect(ctx, nameOrID, client.ContainerInspectOptions{})
	if err != nil {
		return deploy.Container{}, c.fail("inspect", fmt.Errorf("inspect container %s: %w", nameOrID, engineErr(err)))
	}
	return fromInspect(res.Container), nil
}

func fromInspect(in container.InspectResponse) deploy.Container {
	out := deploy.Container{
		ID:           in.ID,
		Name:         strings.TrimPrefix(in.Name, "/"),
		RestartCount: in.RestartCount,
	}
	if in.Config != nil {
		out.Image = in.Config.Image
		out.Labels = in.Config.Labels
	}
	out.IP = firstIP(in)
	out.Published = published(in)
	if s := in.State; s != nil {
		out.Running = s.Running
		out.Status = string(s.Status)
		out.ExitCode = s.ExitCode
		// "0001-01-01T00:00:00Z" for a container never started: the zero time.
		if t, err := time.Parse(time.RFC3339Nano, s.StartedAt); err == nil {
			out.StartedAt = t
		}
		if s.Health != nil {
			out.Health = string(s.Health.Status)
		}
	}
	return out
}

// published returns the host address of each published port's first
// binding: what liftoff's proxy connects to.
func published(in container.InspectResponse) map[string]string {
	if in.NetworkSettings == nil || len(in.NetworkSettings.Ports) == 0 {
		return nil
	}
	out := map[string]string{}
	for port, bindings := range in.NetworkSettings.Ports {
		for _, b := range bindings {
			if b.HostPort == "" {
				continue
			}
			ip := "127.0.0.1"
			if b.HostIP.IsValid() && !b.HostIP.IsUnspecified() {
				ip = b.HostIP.String()
			}
			out[port.String()] = net.JoinHostPort(ip, b.HostPort)
			break
		}
	}
	return out
}

// firstIP returns the container's address on its first network: the one it
// was created with (its network mode), else the first by name that has one.
func firstIP(in container.InspectResponse) string {
	if in.NetworkSettings == nil {
		return ""
	}
	nws := in.NetworkSettings.Networks
	if in.HostConfig != nil {
		mode := string(in.HostConfig.NetworkMode)
		if mode == "default" {
			mode = "bridge"
		}
		if ep := nws[mode]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
	}
	for _, n := range slices.Sorted(maps.Keys(nws)) {
		if ep := nws[n]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress.String()
		}
	}
	return ""
}

// List returns every container, stopped ones included, that carries all of
// labels (a label with value "" matches any value).
func (c *Client) List(ctx context.Context, labels map[string]string) ([]deploy.Container, error) {
	f := client.Filters{}
	for k, v := range labels {
		if v == "" {
			f.Add("label", k)
		} else {
			f.Add("label", k+"="+v)
		}
	}
	res, err := c.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, c.fail("list", fmt.Errorf("list containers: %w", engineErr(err)))
	}
	out := make([]deploy.Container, 0, len(res.Items))
	for _, s := range res.Items {
		// The summary lacks exit code, start time and health.
		ctr, err := c.Inspect(ctx, s.ID)
		if cerrdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ctr)
	}
	return out, nil
}

// Create creates the container of spec, attached to all of spec.Networks
// with spec.Aliases, without starting it. Engine API 1.41 accepts one
// network at create; the others are connected before returning. If any
// step fails, the half-made container is removed.
func (c *Client) Create(ctx context.Context, spec deploy.Spec) (string, error) {
	cfg, host, nw, err := containerConfig(spec)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	// The engine takes a connection of a created container to a network
	// that does not exist, and fails only at start: check first.
	for _, n := range spec.Networks {
		if _, err := c.cli.NetworkInspect(ctx, n, client.NetworkInspectOptions{}); err != nil {
			if cerrdefs.IsNotFound(err) {
				return "", fmt.Errorf("create container %s: network %s does not exist", spec.Name, n)
			}
			return "", c.fail("create", fmt.Errorf("create container %s: inspect network %s: %w", spec.Name, n, engineErr(err)))
		}
	}
	res, err := c.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:             spec.Name,
		Config:           cfg,
		HostConfig:       host,
		NetworkingConfig: nw,
	})
	if err != nil {
		return "", c.fail("create", fmt.Errorf("create container %s: %w", spec.Name, engineErr(err)))
	}
	for _, w := range res.Warnings {
		c.log.Warn().Str("container", spec.Name).Str("warning", w).Msg("docker create")
	}
	for _, n := range spec.Networks[min(1, len(spec.Networks)):] {
		_, err := c.cli.NetworkConnect(ctx, n, client.NetworkConnectOptions{
			Container:      res.ID,
			EndpointConfig: &network.EndpointSettings{Aliases: spec.Aliases},
		})
		if err != nil {
			err = fmt.Errorf("create container %s: connect network %s: %w", spec.Name, n, engineErr(err))
			c.discard(ctx, res.ID, spec.Name)
			return "", c.fail("create", err)
		}
	}
	c.log.Debug().Str("container", spec.Name).Str("id", res.ID).Str("image", spec.Image).Msg("created container")
	return res.ID, nil
}

// SetAliases reconnects a container to each network with the aliases: the
// engine has no call to change an endpoint's aliases in place. The
// container is not yet known by the aliases, so no client of them loses a
// connection.
func (c *Client) SetAliases(ctx context.Context, id string, networks, aliases []string) error {
	for _, n := range networks {
		if _, err := c.cli.NetworkDisconnect(ctx, n, client.NetworkDisconnectOptions{Container: id}); err != nil {
			return c.fail("connect", fmt.Errorf("alias container %s: disconnect network %s: %w", id, n, engineErr(err)))
		}
		if _, err := c.cli.NetworkConnect(ctx, n, client.NetworkConnectOptions{
			Container:      id,
			EndpointConfig: &network.EndpointSettings{Aliases: aliases},
		}); err != nil {
			return c.fail("connect", fmt.Errorf("alias container %s: connect network %s: %w", id, n, engineErr(err)))
		}
	}
	return nil
}

// Drain takes a running container out of Docker's DNS on every network
// where it has aliases, without cutting its connections: it reconnects it
// there without aliases, at the address it had. The engine has no call to
// drop an endpoint's aliases in place, and a disconnect removes the
// container's interface: for the moment (50 to 150ms, measured on Docker
// 20.10) until the reconnect gives the address back, packets to it are
// lost and TCP sends them again (a connection's data within its
// retransmission timeout, a new connection's SYN after 1s), so its
// connections in flight carry on, and so do clients that resolved its
// address before.
//
// The engine lets a container be connected at an address of the caller's
// choosing only on a network with a user-configured subnet ("docker network
// create --subnet"). It is asked first, before anything is undone: on
// another network the container keeps its aliases, and the network is
// returned in kept. If the engine refuses the address after the
// disconnect all the same (another container took it meanwhile, or an
// engine that checks only then), the container is connected at a new
// address, without aliases: drained, but its connections are cut; the
// log says so.
//
// A container that is not running, or has no aliases, is left alone, and
// so is a network it has left meanwhile: Drain may be called again. Its
// errors count in liftoff_docker_errors_total as op "stop": it is the
// first part of stopping a container gracefully.
func (c *Client) Drain(ctx context.Context, id string) (drained, kept []string, err error) {
	res, err := c.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, nil, c.fail("stop", fmt.Errorf("drain container %s: %w", id, engineErr(err)))
	}
	in := res.Container
	if in.State == nil || !in.State.Running || in.NetworkSettings == nil {
		return nil, nil, nil
	}
	nws := in.NetworkSettings.Networks
	for _, n := range slices.Sorted(maps.Keys(nws)) {
		ep := nws[n]
		if ep == nil || !ep.IPAddress.IsValid() || len(userAliases(ep.Aliases, in.ID)) == 0 {
			continue // not in the DNS by an alias there
		}
		ipam := &network.EndpointIPAMConfig{IPv4Address: ep.IPAddress, IPv6Address: ep.GlobalIPv6Address}
		ok, err := c.takesAddress(ctx, n, id, ipam)
		if err != nil {
			return drained, kept, err
		}
		if !ok {
			kept = append(kept, n)
			continue
		}
		if _, err := c.cli.NetworkDisconnect(ctx, n, client.NetworkDisconnectOptions{Container: id}); err != nil {
			if cerrdefs.IsNotFound(err) {
				continue // it left the network, or is gone
			}
			return drained, kept, c.fail("stop", fmt.Errorf("drain container %s: disconnect network %s: %w", id, n, engineErr(err)))
		}
		again := &network.EndpointSettings{IPAMConfig: ipam, Links: ep.Links, DriverOpts: ep.DriverOpts}
		_, err = c.cli.NetworkConnect(ctx, n, client.NetworkConnectOptions{Container: id, EndpointConfig: again})
		if err != nil && !client.IsErrConnectionFailed(err) && ctx.Err() == nil {
			c.log.Warn().Err(err).Str("container", id).Str("network", n).Str("address", ep.IPAddress.String()).
				Msg("drain: the engine would not give the container its address back; connecting it at a new one, which cuts its connections")
			again.IPAMConfig = nil
			_, err = c.cli.NetworkConnect(ctx, n, client.NetworkConnectOptions{Container: id, EndpointConfig: again})
		}
		if err != nil {
			return drained, kept, c.fail("stop", fmt.Errorf("drain container %s: connect network %s: %w", id, n, engineErr(err)))
		}
		drained = append(drained, n)
	}
	return drained, kept, nil
}

// takesAddress asks the engine whether it would connect the container to
// the network at an address of the caller's choosing, without changing
// anything: it asks to connect the container, which is connected there
// already, at ipam. Docker checks the address first and refuses it on a
// network without a user-configured subnet; otherwise it refuses the
// second connection.
func (c *Client) takesAddress(ctx context.Context, nw, id string, ipam *network.EndpointIPAMConfig) (bool, error) {
	_, err := c.cli.NetworkConnect(ctx, nw, client.NetworkConnectOptions{
		Container:      id,
		EndpointConfig: &network.EndpointSettings{IPAMConfig: ipam},
	})
	switch {
	case err == nil:
		return true, nil // an engine that takes a connection twice takes the address
	case client.IsErrConnectionFailed(err) || ctx.Err() != nil:
		return false, c.fail("stop", fmt.Errorf("drain container %s: %w", id, engineErr(err)))
	case strings.Contains(err.Error(), "user configured subnet"):
		return false, nil
	}
	return true, nil
}

// userAliases returns the aliases of an endpoint but the container's short
// id, which Docker adds by itself.
func userAliases(aliases []string, id string) []string {
	short := id[:min(12, len(id))]
	return slices.DeleteFunc(slices.Clone(aliases), func(a string) bool { return a == short })
}

// discard removes a container that Create could not finish, even when ctx
// is what ended Create.
func (c *Client) discard(ctx context.Context, id, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := c.Remove(ctx, id); err != nil {
		c.log.Error().Err(err).Str("container", name).Msg("remove half-created container")
	}
}

// Start starts a created or stopped container.
func (c *Client) Start(ctx context.Context, id string) error {
	if _, err := c.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return c.fail("start", fmt.Errorf("start container %s: %w", id, engineErr(err)))
	}
	return nil
}

// Stop sends the container its own stop signal (SIGTERM unless the image or
// container says otherwise) and kills it after grace, rounded up to whole
// seconds. Stopping a stopped container is not an error.
func (c *Client) Stop(ctx context.Context, id string, grace time.Duration) error {
	secs := int(math.Ceil(max(grace, 0).Seconds()))
	if _, err := c.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return c.fail("stop", fmt.Errorf("stop container %s: %w", id, engineErr(err)))
	}
	return nil
}

// Rename gives a container a new name.
func (c *Client) Rename(ctx context.Context, id, name string) error {
	if _, err := c.cli.ContainerRename(ctx, id, client.ContainerRenameOptions{NewName: name}); err != nil {
		return c.fail("rename", fmt.Errorf("rename container %s to %s: %w", id, name, engineErr(err)))
	}
	return nil
}

// Remove removes a container, running or not, with its anonymous volumes.
// A container that is already gone is not an error.
func (c *Client) Remove(ctx context.Context, id string) error {
	_, err := c.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return c.fail("remove", fmt.Errorf("remove container %s: %w", id, engineErr(err)))
	}
	return nil
}
