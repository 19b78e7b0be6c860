package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// ErrGate marks a new container that did not pass its health gate.
var ErrGate = errors.New("health gate failed")

// pollInterval is how often the gate looks at the new container.
const pollInterval = 100 * time.Millisecond

// gate waits until the new container proves itself (DESIGN.md step 6): it
// keeps running without a restart for min_uptime, its Docker health status
// (the image's HEALTHCHECK or health.cmd) becomes healthy, and health.url
// answers 2xx/3xx — all within health.timeout.
func (a *attempt) gate() error {
	h := a.d.Health
	timeout := h.Timeout
	return a.step(StepGate, timeout+a.e.opts.OpTimeout, func(ctx context.Context) error {
		return a.e.gate(ctx, a.newID, h.URL, h.MinUptime, timeout)
	})
}

func (e *Engine) gate(ctx context.Context, id, url string, minUptime, timeout time.Duration) error {
	rt := e.opts.Runtime
	start := time.Now()
	deadline := start.Add(timeout)
	probed := url == ""
	var lastProbe error
	var nextProbe time.Time
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
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
			if lastProbe = e.probe(ctx, target); lastProbe == nil {
				probed = true
			}
			nextProbe = now.Add(500 * time.Millisecond)
		}
		healthy := c.Health == "" || c.Health == "healthy"
		up := c.StartedAt.IsZero() || now.Sub(c.StartedAt) >= minUptime
		if now.Sub(start) >= minUptime && up && healthy && probed {
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

// retry runs f until it succeeds, fails for a reason other than the engine
// being unavailable (ErrUnavailable), or the retries run out; the waits
// grow from RetryBackoff, doubling, up to 30s.
func (e *Engine) retry(ctx context.Context, log zerolog.Logger, op string, f func(ctx context.Context) error) error {
	wait := e.opts.RetryBackoff
	for try := 1; ; try++ {
		err := f(ctx)
		if err == nil || !errors.Is(err, ErrUnavailable) || try > e.opts.Retries || ctx.Err() != nil {
			return err
		}
		log.Warn().Err(err).Str("step", op).Int("try", try).Dur("wait", wait).Msg("Docker engine or registry unavailable; retrying")
		// Shutting down, a deploy that has touched no container yet gives
		// up at once rather than hold the stop; later steps keep trying.
		var closing <-chan struct{}
		if op == StepResolve || op == StepPull || op == StepPrepare {
			closing = e.closing
		}
		select {
		case <-ctx.Done():
			return err
		case <-closing:
			return fmt.Errorf("%w (liftoff is stopping)", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}
