package cli

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

type historyCmd struct {
	Deployment  string `arg:"" optional:"" help:"Only the deploys of this deployment."`
	Limit       int    `default:"20" help:"How many deploys (at most 1000)."`
	Environment string `placeholder:"ENV" help:"Only the deploys in this environment."`
	Outcome     string `placeholder:"OUTCOME" help:"Only the deploys that ended so: succeeded, unchanged, rolled_back, failed, refused..."`
	Delivery    string `placeholder:"ID" help:"Only the deploys of this delivery (the id deploy, rollback and approve print)."`
	Before      int64  `placeholder:"ID" help:"Only the deploys older than deploy ID (the next page)."`
}

func (c *historyCmd) Help() string {
	return `Newest first: id, when it started, deployment, tag, short digest, what
triggered it (dockerhub, api, resume...), who (the API token's name that asked
or approved, or the pusher), its outcome (or the step it is at), how long it
took and its error, trimmed. Needs the read scope.`
}

func (c *historyCmd) check() error {
	if c.Limit < 1 || c.Limit > 1000 {
		return usagef("--limit %d: want 1 to 1000", c.Limit)
	}
	if c.Before < 0 {
		return usagef("--before %d: want a deploy id", c.Before)
	}
	return nil
}

func (c *historyCmd) Run(s *session) error {
	q := url.Values{"limit": {strconv.Itoa(c.Limit)}}
	for k, v := range map[string]string{"deployment": c.Deployment, "environment": c.Environment, "outcome": c.Outcome, "delivery": c.Delivery} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if c.Before > 0 {
		q.Set("before", strconv.FormatInt(c.Before, 10))
	}
	var page apiv1.Deploys
	a, err := s.api.get(s.ctx, "/deploys", q, &page)
	if err != nil {
		return s.explain(err)
	}
	if len(page.Deploys) == 0 && c.Deployment != "" {
		// No deploys yet, or no such deployment: the latter is an error.
		if _, err := s.api.get(s.ctx, deploymentPath(c.Deployment, ""), nil, nil); err != nil {
			return s.explainFor(err, c.Deployment)
		}
	}
	return s.list(a, len(page.Deploys), "No deploys.", func() {
		s.historyTable(page.Deploys)
		if page.Next != nil {
			more := "liftoff history"
			if c.Deployment != "" {
				more += " " + c.Deployment
			}
			fmt.Fprintf(s.stdout, "\nOlder: %s --before %s\n", more, *page.Next)
		}
	})
}

func (s *session) historyTable(ds []apiv1.Deploy) {
	now := s.now()
	tw := newTable(s.stdout)
	fmt.Fprintln(tw, "ID\tWHEN\tDEPLOYMENT\tTAG\tDIGEST\tTRIGGER\tBY\tOUTCOME\tDURATION\tERROR")
	for _, d := range ds {
		outcome, duration := outcomeOf(d.Outcome), "-"
		if d.Outcome == nil && d.Step != "" {
			outcome += " (" + d.Step + ")"
		}
		if d.Ended != nil {
			duration = apiv1.Seconds(d.Ended.Sub(d.Started).Seconds())
		}
		digest := orDash(apiv1.ShortDigest(d.Digest))
		if d.DigestMismatch {
			digest += " (sender said " + apiv1.ShortDigest(d.ReportedDigest) + ")"
		}
		if v := d.VouchedBy; v != nil {
			digest += fmt.Sprintf(" (revision %s, vouched by #%d of %s)", trimText(v.Revision, 12), v.ID, v.Deployment)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, ago(now, d.Started), d.Deployment, orDash(d.Tag),
			digest, orDash(d.Trigger), orDash(who(d)), outcome, duration, trimText(d.Error, 60))
	}
	tw.Flush()
}

// who asked for a deploy: the API token's name, the pusher, or both for
// an approved push.
func who(d apiv1.Deploy) string {
	switch {
	case d.Actor != "" && d.Pusher != "" && d.Actor != d.Pusher:
		return d.Pusher + ", approved by " + d.Actor
	case d.Actor != "":
		return d.Actor
	}
	return d.Pusher
}
