package control

import (
	"context"
	"fmt"
	"time"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// What the API and the page read, as apiv1 shows it.

// ListDeploys returns the deploys q selects, newest first, and the cursor
// of the next page (0: none).
func (s *Service) ListDeploys(ctx context.Context, q deploy.DeployQuery) ([]deploy.Record, int64, error) {
	return s.history.Deploys(ctx, q)
}

// Logs returns the output of deploy id's backup and release commands if p
// may read them (logs:<env> of its environment); ErrNotFound if there is
// no such deploy (deploy.ErrNotFound), which p without any logs scope is told as ErrForbidden
// first, so that it cannot probe which ids exist.
func (s *Service) Logs(ctx context.Context, p deployments.Principal, id int64) (apiv1.DeployLogs, error) {
	r, ok, err := s.history.Deploy(ctx, id)
	if err != nil {
		return apiv1.DeployLogs{}, err
	}
	env := ""
	if ok {
		env = r.Environment
	}
	if err := May(p, deployments.VerbLogs, env); err != nil {
		return apiv1.DeployLogs{}, err
	}
	if !ok {
		return apiv1.DeployLogs{}, fmt.Errorf("%w: no deploy %d", deploy.ErrNotFound, id)
	}
	return apiv1.DeployLogs{ID: r.ID, Deployment: r.Deployment, Environment: r.Environment,
		Backup: r.BackupOutput, Release: r.ReleaseOutput}, nil
}

// ListDeliveries returns deliveries newest first and the cursor of the
// next page (0: none).
func (s *Service) ListDeliveries(ctx context.Context, limit int, before int64) ([]deploy.Delivery, int64, error) {
	return s.history.Deliveries(ctx, limit, before)
}

// View is what the API and the page show of d now, and its newest deploy
// (nil: none) from which its Last is made: the page shows its phases too.
// When the container engine does not answer, it still fills in all the
// rest and returns an error wrapping ErrUnavailable (the page shows what it
// has; the API answers 503).
func (s *Service) View(ctx context.Context, d *deployments.Deployment) (apiv1.Deployment, *deploy.Record, error) {
	st := s.engine.Status(d.Name)
	v := apiv1.Deployment{Name: d.Name, Environment: d.Environment, Engine: d.Engine, Image: d.Image, Tags: nonNil(d.Tags),
		Strategy: d.Strategy, Paused: st.Paused != nil}
	if v.Engine == "" {
		v.Engine = deployments.LocalEngine
	}
	if p := st.Paused; p != nil {
		v.PausedBy, v.PausedSince = p.Actor, timePtr(p.Since)
	}
	c, err := s.engine.Running(ctx, d.Name)
	var engineErr error
	if err != nil {
		engineErr = fmt.Errorf("%w: container engine: %v", ErrUnavailable, err)
	}
	if c != nil {
		v.Running = runningView(c)
	}
	if pe, ok := s.engine.(processEngine); ok && d.HasProcesses() && engineErr == nil {
		ps, err := pe.Processes(ctx, d.Name)
		if err != nil {
			engineErr = fmt.Errorf("%w: container engine: %v", ErrUnavailable, err)
		}
		for _, p := range ps {
			pv := apiv1.Process{Process: p.Process, Replica: p.Replica}
			if p.Container != nil {
				pv.Running = runningView(p.Container)
			}
			v.Processes = append(v.Processes, pv)
		}
	}
	if why, down := s.engine.Down()[d.Name]; down {
		msg := why.Error()
		v.Down = &msg
	}
	recs, _, err := s.history.Deploys(ctx, deploy.DeployQuery{Deployment: d.Name, Limit: 1})
	if err != nil {
		return v, nil, err
	}
	var last *deploy.Record
	if len(recs) > 0 {
		r := recs[0]
		last = &r
		v.Last = &apiv1.Last{ID: r.ID, Delivery: r.Delivery, Trigger: r.Trigger, Actor: r.Actor, Outcome: outcome(r.Outcome),
			Tag: r.Tag, Digest: r.Digest, Started: r.Started.UTC(), Ended: timePtr(r.Ended), Error: r.Error}
		if r.Outcome == "" {
			v.Last.Step = r.Step
		}
	}
	if p := st.Pending; p != nil {
		v.Pending = &apiv1.Push{Request: p.ID, Delivery: p.Delivery, Tag: p.Tag, Digest: p.Digest, Pusher: p.Pusher,
			Received: p.Received.UTC(), Expires: p.Expires.UTC()}
	}
	if h := st.Held; h != nil {
		v.Held = &apiv1.Push{Request: h.ID, Delivery: h.Delivery, Tag: h.Tag, Digest: h.Digest, Pusher: h.Pusher,
			Received: h.Received.UTC()}
	}
	if c := st.Cooling; c != nil {
		v.Cooling = &apiv1.Push{Request: c.ID, Delivery: c.Delivery, Tag: c.Tag, Digest: c.Digest, Pusher: c.Pusher,
			Received: c.Received.UTC(), Until: c.Until.UTC(), ApprovedBy: c.Actor}
	}
	v.Poll = s.pollView(d)
	v.Canary = s.Canary(d)
	return v, last, engineErr
}

// processEngine is the engine of an app of several processes: the
// deploy engine has it; fakes need not.
type processEngine interface {
	Processes(ctx context.Context, deployment string) ([]deploy.Process, error)
}

func runningView(c *deploy.Container) *apiv1.Running {
	return &apiv1.Running{Container: c.Name, ID: c.ID, Tag: c.Labels[deploy.LabelTag], Digest: c.Labels[deploy.LabelDigest],
		Since: timePtr(c.StartedAt), State: c.Status, Health: c.Health}
}

// pollView is what the polls of d did, nil if d is not polled. A
// deployment the config polls but the poller does not know yet (before it
// runs, or just after a reload) has its interval only.
func (s *Service) pollView(d *deployments.Deployment) *apiv1.Poll {
	every := d.PollInterval()
	if s.polls == nil || every <= 0 {
		return nil
	}
	v := &apiv1.Poll{IntervalSeconds: every.Seconds()}
	if st, ok := s.polls.Status(d.Name); ok {
		v.Polled, v.Result, v.Next = timePtr(st.Polled), st.Result, timePtr(st.Next)
	}
	return v
}

// Deliveries is ds as the API shows them.
func Deliveries(ds []deploy.Delivery) []apiv1.Delivery {
	out := make([]apiv1.Delivery, 0, len(ds))
	for _, d := range ds {
		out = append(out, apiv1.Delivery{ID: d.ID, Source: d.Source, Image: d.Image, Tag: d.Tag, Pusher: d.Pusher,
			Actor: d.Actor, Received: d.Received.UTC(), Accepted: nonNil(d.Accepted), Ignored: ignoredViews(d.Ignored)})
	}
	return out
}

// Deploys is recs as the API shows them.
func Deploys(recs []deploy.Record) []apiv1.Deploy {
	out := make([]apiv1.Deploy, 0, len(recs))
	for _, r := range recs {
		v := apiv1.Deploy{ID: r.ID, Deployment: r.Deployment, Environment: r.Environment, Image: r.Image, Tag: r.Tag,
			Digest: r.Digest, PreviousDigest: r.Previous, Trigger: r.Trigger, Actor: r.Actor, Pusher: r.Pusher,
			Delivery: r.Delivery, Outcome: outcome(r.Outcome), Settled: r.Outcome != "" && !r.Open,
			Error: r.Error, Started: r.Started.UTC(), Ended: timePtr(r.Ended), Phases: map[string]float64{}}
		if r.VouchedBy != 0 {
			v.VouchedBy = &apiv1.Vouch{ID: r.VouchedBy, Deployment: r.VouchedFrom, Revision: r.VouchedRevision}
		}
		if r.Mismatch() {
			v.ReportedDigest, v.DigestMismatch = r.Reported, true
		}
		if r.Outcome == "" {
			v.Step = r.Step // under way: how far it got
		}
		for k, d := range r.Phases {
			v.Phases[k] = d.Seconds()
		}
		out = append(out, v)
	}
	return out
}

func outcome(o deploy.Outcome) *string {
	if o == "" {
		return nil // still running
	}
	s := string(o)
	return &s
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ignoredViews is never nil: the API answers [] for none.
func ignoredViews(igs []deployments.Ignored) []apiv1.Ignored {
	out := make([]apiv1.Ignored, len(igs))
	for i, ig := range igs {
		out[i] = apiv1.Ignored(ig)
	}
	return out
}
