package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// killWait bounds how long a one-off container killed at its timeout may
// take to be seen exiting: SIGKILL cannot be caught, so only an engine in
// trouble takes long.
const killWait = time.Minute

// removeWait bounds the removal of a one-off container once the caller
// has given up on it.
const removeWait = 30 * time.Second

// RunOnce runs spec's command in a one-off container, as
// "docker run --rm IMAGE CMD..." would: the image's entrypoint stays and
// spec.Cmd replaces its CMD. The container joins spec.Networks without
// aliases, publishes no port, has no restart policy and no health check (it
// serves nothing), and always carries deploy.LabelManaged, so that one a
// crash leaves behind is known as liftoff's next time.
//
// A container named spec.Name is removed first if it is liftoff's; if it is
// not, RunOnce refuses and leaves it alone. The wait for the exit is
// registered before the start, so a command that ends at once is not
// missed. At spec.Timeout (which must be positive) the container is killed
// and the result says TimedOut. The output is read from the engine's log
// once the container has exited, through a buffer that keeps the last
// spec.OutputLimit bytes; an output the engine cannot give back (a logging
// driver that keeps nothing) is logged, not an error. Not being AutoRemove,
// the container is removed by RunOnce itself, whatever happened, even once
// ctx is done: ctx ending first kills it, removes it and returns ctx's
// error.
//
// Failures of the wait and of the kill count in liftoff_docker_errors_total
// as op "run", of reading the output as "logs"; create, start and remove
// count under their own ops.
func (c *Client) RunOnce(ctx context.Context, spec deploy.OneOff) (deploy.OneOffResult, error) {
	if spec.Timeout <= 0 {
		return deploy.OneOffResult{}, fmt.Errorf("run %s: no timeout", spec.Name)
	}
	if err := c.clearLeftover(ctx, spec.Name); err != nil {
		return deploy.OneOffResult{}, err
	}
	id, err := c.Create(ctx, oneOffSpec(spec))
	if err != nil {
		return deploy.OneOffResult{}, fmt.Errorf("run %s: %w", spec.Name, err)
	}
	defer c.removeOneOff(ctx, id, spec.Name)
	res, err := c.run(ctx, id, spec)
	if err != nil {
		return res, err
	}
	c.log.Debug().Str("container", spec.Name).Int("exit_code", res.ExitCode).Bool("timed_out", res.TimedOut).Msg("one-off container exited")
	res.Output, err = c.output(ctx, id, spec.OutputLimit)
	if err != nil {
		if ctx.Err() != nil {
			return res, fmt.Errorf("run %s: %w", spec.Name, ctx.Err())
		}
		c.log.Warn().Err(err).Str("container", spec.Name).Msg("the output of a one-off container could not be read; its exit code stands")
	}
	return res, nil
}

// oneOffSpec is the container of a one-off run, in the terms Create takes.
func oneOffSpec(o deploy.OneOff) deploy.Spec {
	labels := make(map[string]string, len(o.Labels)+1)
	maps.Copy(labels, o.Labels)
	labels[deploy.LabelManaged] = "true"
	return deploy.Spec{
		Name:        o.Name,
		Image:       o.Image,
		Env:         o.Env,
		Cmd:         o.Cmd,
		Labels:      labels,
		Volumes:     o.Volumes,
		Networks:    o.Networks,
		Restart:     string(container.RestartPolicyDisabled),
		Healthcheck: &deploy.Healthcheck{Test: []string{"NONE"}},
	}
}

// clearLeftover removes the container named name if liftoff made it (a
// crash in the middle of a run leaves one), and refuses to go on if another
// container has the name.
func (c *Client) clearLeftover(ctx context.Context, name string) error {
	old, err := c.Inspect(ctx, name)
	switch {
	case errors.Is(err, deploy.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("run %s: %w", name, err)
	case old.Name != name:
		return nil // the engine matched an id prefix: no container has the name
	case !old.Managed():
		return fmt.Errorf("run %s: a container named %s exists and liftoff did not create it (no label %s=true); "+
			"liftoff does not remove it: remove or rename it", name, name, deploy.LabelManaged)
	}
	c.log.Warn().Str("container", name).Str("id", old.ID).Str("status", old.Status).
		Msg("removing a one-off container an earlier run left behind")
	if err := c.Remove(ctx, old.ID); err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	return nil
}

// run starts the created container id and waits for it to exit, killing it
// at spec.Timeout.
func (c *Client) run(ctx context.Context, id string, spec deploy.OneOff) (deploy.OneOffResult, error) {
	var res deploy.OneOffResult
	waitCtx, stopWait := context.WithCancel(ctx)
	// The engine answers the wait's headers once it has registered it:
	// from here no exit is missed, however soon it comes.
	w := c.cli.ContainerWait(waitCtx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	answered := false
	defer func() {
		stopWait()
		if !answered {
			// The wait sends one answer, a result on an unbuffered
			// channel if the exit came just now: take it, or its
			// goroutine is stuck for good.
			go func() {
				select {
				case <-w.Result:
				case <-w.Error:
				}
			}()
		}
	}()
	select {
	case err := <-w.Error:
		answered = true
		if ctx.Err() != nil {
			return res, fmt.Errorf("run %s: %w", spec.Name, ctx.Err())
		}
		return res, c.fail("run", fmt.Errorf("run %s: wait: %w", spec.Name, engineErr(err)))
	default:
	}
	if err := c.Start(ctx, id); err != nil {
		return res, fmt.Errorf("run %s: %w", spec.Name, err)
	}
	res, err := c.await(ctx, id, spec, w, &answered)
	if errors.Is(err, deploy.ErrUnavailable) {
		// The command runs, or ran: the engine's retry must not run it
		// again (and kill this run as a leftover), so this is no longer
		// "unavailable" but the step's failure.
		err = fmt.Errorf("%s; the command had started, so it is not run again", err.Error())
	}
	return res, err
}

// await waits for the started container id to exit, killing it at
// spec.Timeout.
func (c *Client) await(ctx context.Context, id string, spec deploy.OneOff, w client.ContainerWaitResult, answered *bool) (deploy.OneOffResult, error) {
	var res deploy.OneOffResult
	timeout := time.NewTimer(spec.Timeout)
	defer timeout.Stop()
	var killed <-chan time.Time
	for {
		select {
		case r := <-w.Result:
			*answered = true
			if r.Error != nil && r.Error.Message != "" {
				return res, c.fail("run", fmt.Errorf("run %s: %s", spec.Name, r.Error.Message))
			}
			res.ExitCode = int(r.StatusCode)
			return res, nil
		case err := <-w.Error:
			*answered = true
			if ctx.Err() != nil {
				return res, fmt.Errorf("run %s: %w", spec.Name, ctx.Err())
			}
			return res, c.fail("run", fmt.Errorf("run %s: wait: %w", spec.Name, engineErr(err)))
		case <-ctx.Done():
			// removeOneOff kills it.
			return res, fmt.Errorf("run %s: %w", spec.Name, ctx.Err())
		case <-timeout.C:
			_, err := c.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"})
			switch {
			case err == nil:
				res.TimedOut = true
				c.log.Warn().Str("container", spec.Name).Dur("timeout", spec.Timeout).Msg("one-off container killed at its timeout")
			case cerrdefs.IsConflict(err):
				// It exited on its own just now: its exit is on its way.
			case ctx.Err() != nil:
				return res, fmt.Errorf("run %s: %w", spec.Name, ctx.Err())
			default:
				return res, c.fail("run", fmt.Errorf("run %s: kill at its timeout %s: %w", spec.Name, spec.Timeout, engineErr(err)))
			}
			killed = time.After(killWait)
		case <-killed:
			return res, c.fail("run", fmt.Errorf("run %s: still not exited %s after it was killed at its timeout", spec.Name, killWait))
		}
	}
}

// output returns the last limit bytes of what the exited container id
// wrote to stdout and stderr, interleaved as the engine logged them.
func (c *Client) output(ctx context.Context, id string, limit int) ([]byte, error) {
	if limit <= 0 {
		return nil, nil
	}
	rc, err := c.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return nil, c.fail("logs", fmt.Errorf("logs of %s: %w", id, engineErr(err)))
	}
	defer rc.Close()
	t := &tail{limit: limit}
	// Without a TTY the log is stdout and stderr multiplexed in frames.
	if _, err := stdcopy.StdCopy(t, t, rc); err != nil {
		return t.bytes(), c.fail("logs", fmt.Errorf("logs of %s: %w", id, engineErr(err)))
	}
	return t.bytes(), nil
}

// removeOneOff removes the one-off container id, killing it if it runs,
// even once ctx is done: a one-off container is never left behind.
func (c *Client) removeOneOff(ctx context.Context, id, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeWait)
	defer cancel()
	if err := c.Remove(ctx, id); err != nil {
		c.log.Error().Err(err).Str("container", name).Msg("remove one-off container; the next run of it removes it")
	}
}

// tail is an io.Writer that keeps the last limit bytes written to it, in a
// ring that grows up to limit and never beyond.
type tail struct {
	limit int
	buf   []byte // at most limit bytes; once full, a ring
	next  int    // once buf is full: where the oldest byte is, and the next write goes
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) > t.limit {
		p = p[len(p)-t.limit:]
	}
	if room := t.limit - len(t.buf); room > 0 {
		k := min(room, len(p))
		if len(t.buf)+k > cap(t.buf) {
			grown := make([]byte, len(t.buf), min(t.limit, max(2*cap(t.buf), len(t.buf)+k, 4096)))
			copy(grown, t.buf)
			t.buf = grown
		}
		t.buf = append(t.buf, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 {
		k := copy(t.buf[t.next:], p)
		p = p[k:]
		t.next = (t.next + k) % t.limit
	}
	return n, nil
}

// bytes returns what is kept, oldest first.
func (t *tail) bytes() []byte {
	out := make([]byte, 0, len(t.buf))
	out = append(out, t.buf[t.next:]...)
	return append(out, t.buf[:t.next]...)
}
