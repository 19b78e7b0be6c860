package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// ErrGate marks a new container that did not pass its health gate.
var ErrGate = errors.New("health gate failed")

// gate waits until the new container proves itself: it keeps running without a restart for min_uptime, its Docker health status
// (the image's HEALTHCHECK or health.cmd) becomes healthy, and health.url
// answers 2xx/3xx — all within health.timeout.
func (a *attempt) gate() error {
	return a.step(StepGate, a.d.Health.Timeout+a.e.opts.OpTimeout, func(ctx context.Context) error {
		return a.e.gate(ctx, a.rt, a.d, a.newID)
	})
}

// gate waits until container id of d passes d's health gate.
func (e *Engine) gate(ctx context.Context, rt Containers, d *deployments.Deployment, id string) error {
	url, minUptime, timeout := d.Health.URL, d.Health.MinUptime, d.Health.Timeout
	start := time.Now()
	deadline := start.Add(timeout)
	probed := url == ""
	var lastProbe error
	var nextProbe time.Time
	tick := time.NewTicker(e.opts.waits.poll)
	defer tick.Stop()
	for {
		// The state Inspect reports may be as old as the moment it was
		// asked: the uptime counts to then, not to its answer, which a
		// busy engine may give late (a container that exited meanwhile
		// must not pass for having run until the answer came).
		asked := time.Now()
		c, err := rt.Inspect(ctx, id)
		if err != nil {
			return fmt.Errorf("inspect new container: %w", err)
		}
		switch {
		case !c.Running:
			return fmt.Errorf("%w: container %s (exit code %d)", ErrGate, c.Status, c.ExitCode)
		case c.RestartCount > 0:
			return fmt.Errorf("%w: container restarted %d times", ErrGate, c.RestartCount)
		case c.Health == "unhealthy":
			return fmt.Errorf("%w: Docker health check reports unhealthy", ErrGate)
		}
		now := time.Now()
		if !probed && !now.Before(nextProbe) {
			target := strings.ReplaceAll(url, "{container}", c.IP)
			if d.Proxy != nil && strings.Contains(target, "{upstream}") {
				up, _ := upstreamOf(d, &c) // "" until it publishes: the probe fails
				target = strings.ReplaceAll(target, "{upstream}", up)
			}
			if lastProbe = e.probe(ctx, target); lastProbe == nil {
				probed = true
			}
			nextProbe = now.Add(e.opts.waits.probe)
		}
		healthy := c.Health == "" || c.Health == "healthy"
		up := c.StartedAt.IsZero() || asked.Sub(c.StartedAt) >= minUptime
		if asked.Sub(start) >= minUptime && up && healthy && probed {
			return nil
		}
		if now.After(deadline) {
			var waiting []string
			if !healthy {
				waiting = append(waiting, "Docker health status "+c.Health)
			}
			if !probed {
				waiting = append(waiting, fmt.Sprintf("health.url (last: %v)", lastProbe))
			}
			if len(waiting) == 0 {
				waiting = append(waiting, "min_uptime")
			}
			return fmt.Errorf("%w: timed out after %s waiting for %s", ErrGate, timeout, strings.Join(waiting, ", "))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// probe GETs url once: 2xx and 3xx pass (redirects are not followed).
func (e *Engine) probe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}
