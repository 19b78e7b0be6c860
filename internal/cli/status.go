package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

type statusCmd struct {
	Deployment string `arg:"" optional:"" help:"Only this deployment, with its 20 newest deploys."`
}

func (c *statusCmd) Help() string {
	return `Without DEPLOYMENT, one line per deployment of the daemon's config:
environment, deployment, the tag and short digest running, since when, the
container's state/health, how the last deploy ended, and marks: PAUSED,
PENDING (a push awaits approval), HELD (a push waits for resume), DOWN (no
container passes its health gate). Each mark is explained under the table.
With DEPLOYMENT, that line, how its registry is polled (if it is: every
how long, the last poll and what the registry answered, the next), and its
newest deploys. An app of several processes has a line under it per
replica of each process (process.replica), in the order a deploy swaps
them. Needs the read scope.`
}

func (c *statusCmd) Run(s *session) error {
	if c.Deployment != "" {
		var d apiv1.DeploymentDetail
		a, err := s.api.get(s.ctx, deploymentPath(c.Deployment, ""), nil, &d)
		if err != nil {
			return s.explainFor(err, c.Deployment)
		}
		if s.json {
			return s.printJSON(a.body)
		}
		s.statusTable([]apiv1.Deployment{d.Deployment}, true)
		if len(d.History) > 0 {
			fmt.Fprintln(s.stdout)
			s.historyTable(d.History)
		}
		return nil
	}
	var list apiv1.Deployments
	a, err := s.api.get(s.ctx, "/deployments", nil, &list)
	if err != nil {
		return s.explain(err)
	}
	return s.list(a, len(list.Deployments), "No deployments configured.", func() { s.statusTable(list.Deployments, false) })
}

// statusTable prints a line per deployment, then the notes on them; with
// detail (one deployment), its polls too.
func (s *session) statusTable(ds []apiv1.Deployment, detail bool) {
	now := s.now()
	tw := newTable(s.stdout)
	fmt.Fprintln(tw, "ENVIRONMENT\tDEPLOYMENT\tTAG\tDIGEST\tSINCE\tSTATE\tLAST\t")
	var notes []string
	for _, d := range ds {
		tag, digest, since, state := runningCells(now, d.Running)
		if e := d.EngineError; e != nil && d.Running == nil {
			state = "unknown"
			notes = append(notes, fmt.Sprintf("%s: what runs is unknown: %s", d.Name, trimText(*e, 200)))
		}
		last := "-"
		if l := d.Last; l != nil {
			last = fmt.Sprintf("%s #%d", outcomeOf(l.Outcome), l.ID)
			if l.Outcome != nil && !goodOutcome(*l.Outcome) && l.Error != "" {
				notes = append(notes, fmt.Sprintf("%s: last deploy #%d (%s) %s: %s", d.Name, l.ID, orDash(refOf(l.Tag, l.Digest)),
					*l.Outcome, trimText(l.Error, 160)))
			}
		}
		var marks []string
		if d.Paused {
			marks = append(marks, "PAUSED")
			n := d.Name + ": PAUSED"
			if d.PausedBy != "" {
				n += " by " + d.PausedBy
			}
			if d.PausedSince != nil {
				n += " " + ago(now, *d.PausedSince)
			}
			notes = append(notes, n+": pushes are held, not deployed (liftoff resume "+d.Name+")")
		}
		if p := d.Pending; p != nil {
			marks = append(marks, "PENDING")
			n := fmt.Sprintf("%s: PENDING %s", d.Name, refOf(p.Tag, p.Digest))
			if p.Pusher != "" {
				n += " pushed by " + p.Pusher
			}
			n += " " + ago(now, p.Received) + " awaits approval"
			if !p.Expires.IsZero() {
				n += ", expires " + ago(now, p.Expires)
			}
			notes = append(notes, n+" (liftoff approve|reject "+d.Name+")")
		}
		if c := d.Cooling; c != nil {
			marks = append(marks, "COOLING")
			by := ""
			if c.ApprovedBy != "" {
				by = ", approved by " + c.ApprovedBy
			}
			notes = append(notes, fmt.Sprintf("%s: COOLING %s, pushed %s%s: its image is younger than min_image_age; deploys %s (%s)",
				d.Name, refOf(c.Tag, c.Digest), ago(now, c.Received), by, ago(now, c.Until), c.Until.Format(time.RFC3339)))
		}
		if h := d.Held; h != nil {
			marks = append(marks, "HELD")
			notes = append(notes, fmt.Sprintf("%s: HELD %s, pushed %s, deploys on resume", d.Name, refOf(h.Tag, h.Digest), ago(now, h.Received)))
		}
		if d.Down != nil {
			marks = append(marks, "DOWN")
			notes = append(notes, fmt.Sprintf("%s: DOWN: %s", d.Name, trimText(*d.Down, 200)))
		}
		if p := d.Poll; p != nil && detail {
			notes = append(notes, d.Name+": "+pollText(now, *p))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(d.Environment), d.Name, tag, digest, since, state, last,
			strings.Join(marks, " "))
		// An app of several processes: a line per replica of each.
		for _, p := range d.Processes {
			tag, digest, since, state := runningCells(now, p.Running)
			fmt.Fprintf(tw, "\t  %s.%d\t%s\t%s\t%s\t%s\t\t\n", p.Process, p.Replica, tag, digest, since, state)
		}
	}
	tw.Flush()
	if len(notes) > 0 {
		fmt.Fprintln(s.stdout)
		for _, n := range notes {
			fmt.Fprintln(s.stdout, n)
		}
	}
}

// pollText says how the deployment's registry is polled: "polled every
// 5m00s: last 42s ago, ok; next in 4m".
func pollText(now time.Time, p apiv1.Poll) string {
	t := "polled every " + apiv1.Seconds(p.IntervalSeconds) + ": "
	if p.Polled != nil {
		t += "last " + ago(now, *p.Polled) + ", " + orDash(trimText(p.Result, 200))
	} else {
		t += "not polled yet"
	}
	if p.Next != nil {
		t += "; next " + ago(now, *p.Next)
	}
	return t
}

// runningCells are the TAG, DIGEST, SINCE and STATE of what runs.
func runningCells(now time.Time, r *apiv1.Running) (tag, digest, since, state string) {
	tag, digest, since, state = "-", "-", "-", "not running"
	if r != nil {
		tag, digest, state = orDash(r.Tag), orDash(apiv1.ShortDigest(r.Digest)), orDash(r.State)
		if r.Health != "" && r.Health != "none" {
			state += "/" + r.Health
		}
		if r.Since != nil {
			since = ago(now, *r.Since)
		}
	}
	return tag, digest, since, state
}
