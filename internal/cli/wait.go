package cli

// --wait: following a deploy the daemon accepted, through
// GET /api/v1/deploys?delivery=ID, until it ends.

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

// followed is a deploy the daemon accepted (202) and the client follows.
type followed struct {
	deployment string
	delivery   string
	// tag or digest asked for, if known: a deploy of another request
	// asking the same stands for this one (the engine drops a request
	// identical to one already waiting).
	tag, digest string
	what        string // "deploy of v1.2 to web", for messages
}

// sameAs tells whether deploy d deploys what f asked for.
func (f followed) sameAs(d apiv1.Deploy) bool {
	switch {
	case f.tag != "":
		return d.Tag == f.tag
	case f.digest != "":
		return d.Digest == f.digest
	}
	return false
}

// started reports a deploy the daemon accepted (202), and follows it with
// --wait.
func (s *session) started(a answer, f followed, w WaitFlags) error {
	if f.delivery == "" {
		return failf("the daemon accepted the %s but named no delivery to follow", f.what)
	}
	if !w.Wait {
		if s.json {
			return s.printJSON(a.body)
		}
		fmt.Fprintf(s.stdout, "Accepted: %s (delivery %s).\n", f.what, f.delivery)
		fmt.Fprintf(s.stdout, "Follow it: liftoff history --delivery %s   (or add --wait)\n", f.delivery)
		return nil
	}
	fmt.Fprintf(s.progress(), "Accepted: %s (delivery %s); waiting up to %s.\n", f.what, f.delivery, w.Timeout)
	return s.follow(f, w.Timeout)
}

// stepText says what each step of a deploy (apiv1.Steps) does.
var stepText = map[string]string{
	"resolve":  "looking up the tag's digest",
	"pull":     "pulling the image",
	"prepare":  "preparing the container, checking the policies",
	"backup":   "running the environment's backup",
	"release":  "running the release command",
	"service":  "creating the service, or updating it to the new spec",
	"stop":     "stopping the previous container",
	"rename":   "setting the previous container aside",
	"create":   "creating the new container",
	"start":    "starting the new container",
	"gate":     "health gate: the new container proves itself",
	"canary":   "canary: the new container takes a share of the clients (liftoff canary status)",
	"publish":  "giving the new container its network aliases",
	"cleanup":  "removing the previous container",
	"rollback": "the new container failed: rolling back to the previous one",
}

// follow polls the deploy of f.delivery until it ends or timeout passes,
// printing a line per step it sees and the phases once it ended. It
// returns nil only if the deploy succeeded or found the version running
// already.
func (s *session) follow(f followed, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	defer cancel()
	out := s.progress()
	var (
		step        string
		queued      bool
		lost        bool
		interrupted bool
		cooling     bool       // said that the push waits for min_image_age
		baseline    int64 = -1 // the deployment's newest deploy while ours had not begun
		last        *apiv1.Deploy
	)
	for {
		rec, body, err := s.deployOf(ctx, f)
		if err == nil && rec == nil {
			// Not begun: waiting behind another deploy, or replaced by
			// a newer request (latest wins), which then begins while
			// ours never does.
			var newest *apiv1.Deploy
			newest, err = s.newestDeploy(ctx, f.deployment)
			if err != nil && forbidden(err) {
				// A token without read sees only its own delivery's
				// deploys; a daemon that records superseded pushes
				// says so there.
				newest, err = nil, nil
			}
			if err == nil && newest != nil || err == nil && baseline < 0 {
				switch {
				case baseline < 0:
					baseline = 0
					if newest != nil {
						baseline = newest.ID
					}
				case newest != nil && newest.ID > baseline && newest.Delivery != f.delivery:
					// Ours may have begun and ended between the two
					// calls: look once more.
					if rec, body, err = s.deployOf(ctx, f); err == nil && rec == nil {
						if !f.sameAs(*newest) {
							return failf("the %s was superseded: a later request (delivery %s, %s) deploys instead as deploy #%d; follow it: liftoff history --delivery %s",
								f.what, newest.Delivery, orDash(refOf(newest.Tag, newest.Digest)), newest.ID, newest.Delivery)
						}
						fmt.Fprintf(out, "  an identical request (delivery %s) stands for this one: following deploy #%d\n", newest.Delivery, newest.ID)
						f.delivery = newest.Delivery
						rec, body, err = s.deployOf(ctx, f)
					}
				}
			}
		}
		switch {
		case err != nil && ctx.Err() != nil:
			// out of time: said below
		case err != nil && forbidden(err):
			return failf("the %s was accepted (delivery %s), but --wait cannot follow it: %v; give the token the read scope too, or follow it with liftoff history --delivery %s and a token that has it",
				f.what, f.delivery, s.explain(err), f.delivery)
		case err != nil && !transient(err):
			return s.explain(err)
		case err != nil:
			if !lost {
				fmt.Fprintf(out, "  no answer from the daemon (%v); still waiting\n", err)
				lost = true
			}
		case rec == nil:
			lost = false
			if !queued {
				fmt.Fprintln(out, "  queued: waiting for its turn")
				queued = true
			}
		case rec.Outcome == nil:
			lost, last = false, rec
			if rec.Step != step {
				step = rec.Step
				fmt.Fprintf(out, "  %-8s  %s\n", step, stepText[step])
			}
		case !rec.Settled && *rec.Outcome == "deferred":
			// The image is younger than min_image_age: the same push
			// deploys once it is old enough, under this delivery.
			lost, last = false, rec
			if !cooling {
				fmt.Fprintf(out, "  cooling down: %s\n", orDash(rec.Error))
				cooling, step = true, ""
			}
		case !rec.Settled:
			// Interrupted (liftoff stopped or died): the daemon repaired
			// it and deploys the same push again, under this delivery.
			lost, last = false, rec
			if !interrupted {
				fmt.Fprintf(out, "  interrupted (%s): liftoff deploys it again\n", orDash(rec.Error))
				interrupted, step = true, ""
			}
		default:
			return s.ended(*rec, body)
		}
		select {
		case <-ctx.Done():
			return s.gaveUp(f, timeout, last)
		case <-time.After(s.poll):
		}
	}
}

// deployOf returns the newest deploy of f's delivery and deployment (nil
// if none began yet) and the API's answer.
func (s *session) deployOf(ctx context.Context, f followed) (*apiv1.Deploy, []byte, error) {
	var page apiv1.Deploys
	q := url.Values{"delivery": {f.delivery}, "deployment": {f.deployment}, "limit": {"1"}}
	a, err := s.api.get(ctx, "/deploys", q, &page)
	if err != nil || len(page.Deploys) == 0 {
		return nil, nil, err
	}
	return &page.Deploys[0], a.body, nil
}

// newestDeploy returns the deployment's newest deploy, nil if none.
func (s *session) newestDeploy(ctx context.Context, deployment string) (*apiv1.Deploy, error) {
	var page apiv1.Deploys
	_, err := s.api.get(ctx, "/deploys", url.Values{"deployment": {deployment}, "limit": {"1"}}, &page)
	if err != nil || len(page.Deploys) == 0 {
		return nil, err
	}
	return &page.Deploys[0], nil
}

// ended reports a deploy that ended: its phases and outcome.
func (s *session) ended(d apiv1.Deploy, body []byte) error {
	out := s.progress()
	if len(d.Phases) > 0 {
		fmt.Fprintf(out, "  phases: %s\n", phasesLine(d.Phases))
	}
	took := "-"
	if d.Ended != nil {
		took = apiv1.Seconds(d.Ended.Sub(d.Started).Seconds())
	}
	if s.json {
		if err := s.printJSON(body); err != nil {
			return err
		}
	}
	// "v1.4.2 (3f9a0c1d2e4b)", "@3f9a0c1d2e4b", or "v1.4.2" before its
	// digest was known.
	ref := d.Tag
	switch {
	case ref == "":
		ref = "@" + apiv1.ShortDigest(d.Digest)
	case d.Digest != "":
		ref += " (" + apiv1.ShortDigest(d.Digest) + ")"
	}
	switch o := outcomeOf(d.Outcome); o {
	case "succeeded":
		fmt.Fprintf(out, "succeeded: %s runs %s; deploy #%d took %s\n", d.Deployment, ref, d.ID, took)
		return nil
	case "unchanged":
		fmt.Fprintf(out, "unchanged: %s runs %s already; deploy #%d\n", d.Deployment, ref, d.ID)
		return nil
	default:
		why := ""
		if d.Error != "" {
			why = ": " + d.Error
		}
		return failf("%s: deploy #%d of %s to %s did not succeed after %s%s", o, d.ID, ref, d.Deployment, took, why)
	}
}

// gaveUp says why waiting stopped before the deploy ended.
func (s *session) gaveUp(f followed, timeout time.Duration, last *apiv1.Deploy) error {
	follow := "liftoff history --delivery " + f.delivery
	if s.ctx.Err() != nil {
		return failf("interrupted: stopped waiting; the %s goes on in the daemon (%s)", f.what, follow)
	}
	state := "has not begun (queued behind another deploy, or the daemon is away)"
	if last != nil {
		state = fmt.Sprintf("is deploy #%d, at step %s", last.ID, orDash(last.Step))
	}
	return failf("gave up waiting after %s (--timeout): the %s %s; it goes on in the daemon (%s)", timeout, f.what, state, follow)
}
