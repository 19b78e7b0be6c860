package main

// The client commands' Run methods, and the tables they print.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// --- status ---

type statusCmd struct {
	Deployment string `arg:"" optional:"" help:"Only this deployment, with its 20 newest deploys."`
}

func (c *statusCmd) Help() string {
	return `Without DEPLOYMENT, one line per deployment of the daemon's config:
environment, deployment, the tag and short digest running, since when, the
container's state/health, how the last deploy ended, and marks: PAUSED,
PENDING (a push awaits approval), HELD (a push waits for resume), DOWN (no
container passes its health gate). Each mark is explained under the table.
With DEPLOYMENT, that line and its newest deploys. Needs the read scope.`
}

func (c *statusCmd) Run(s *cliSession) error {
	if c.Deployment != "" {
		var d deploymentJSON
		a, err := s.api.get(s.ctx, deploymentPath(c.Deployment, ""), nil, &d)
		if err != nil {
			return s.explainFor(err, c.Deployment)
		}
		if s.json {
			return s.printJSON(a.body)
		}
		s.statusTable([]deploymentJSON{d})
		if len(d.History) > 0 {
			fmt.Fprintln(s.stdout)
			s.historyTable(d.History)
		}
		return nil
	}
	var list struct {
		Deployments []deploymentJSON `json:"deployments"`
	}
	a, err := s.api.get(s.ctx, "/deployments", nil, &list)
	if err != nil {
		return s.explain(err)
	}
	if s.json {
		return s.printJSON(a.body)
	}
	if len(list.Deployments) == 0 {
		fmt.Fprintln(s.stdout, "No deployments configured.")
		return nil
	}
	s.statusTable(list.Deployments)
	return nil
}

func (s *cliSession) statusTable(ds []deploymentJSON) {
	now := s.now()
	tw := newTable(s.stdout)
	fmt.Fprintln(tw, "ENVIRONMENT\tDEPLOYMENT\tTAG\tDIGEST\tSINCE\tSTATE\tLAST\t")
	var notes []string
	for _, d := range ds {
		tag, digest, since, state := "-", "-", "-", "not running"
		if r := d.Running; r != nil {
			tag, digest, state = orDash(r.Tag), orDash(shortDigest(r.Digest)), orDash(r.State)
			if r.Health != "" && r.Health != "none" {
				state += "/" + r.Health
			}
			if r.Since != nil {
				since = ago(now, *r.Since)
			}
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
		if h := d.Held; h != nil {
			marks = append(marks, "HELD")
			notes = append(notes, fmt.Sprintf("%s: HELD %s, pushed %s, deploys on resume", d.Name, refOf(h.Tag, h.Digest), ago(now, h.Received)))
		}
		if d.Down != nil {
			marks = append(marks, "DOWN")
			notes = append(notes, fmt.Sprintf("%s: DOWN: %s", d.Name, trimText(*d.Down, 200)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(d.Environment), d.Name, tag, digest, since, state, last,
			strings.Join(marks, " "))
	}
	tw.Flush()
	if len(notes) > 0 {
		fmt.Fprintln(s.stdout)
		for _, n := range notes {
			fmt.Fprintln(s.stdout, n)
		}
	}
}

// --- history ---

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

func (c *historyCmd) Run(s *cliSession) error {
	q := url.Values{"limit": {strconv.Itoa(c.Limit)}}
	for k, v := range map[string]string{"deployment": c.Deployment, "environment": c.Environment, "outcome": c.Outcome, "delivery": c.Delivery} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if c.Before > 0 {
		q.Set("before", strconv.FormatInt(c.Before, 10))
	}
	var page deploysJSON
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
	if s.json {
		return s.printJSON(a.body)
	}
	if len(page.Deploys) == 0 {
		fmt.Fprintln(s.stdout, "No deploys.")
		return nil
	}
	s.historyTable(page.Deploys)
	if page.Next != nil {
		more := "liftoff history"
		if c.Deployment != "" {
			more += " " + c.Deployment
		}
		fmt.Fprintf(s.stdout, "\nOlder: %s --before %s\n", more, *page.Next)
	}
	return nil
}

func (s *cliSession) historyTable(ds []deployJSON) {
	now := s.now()
	tw := newTable(s.stdout)
	fmt.Fprintln(tw, "ID\tWHEN\tDEPLOYMENT\tTAG\tDIGEST\tTRIGGER\tBY\tOUTCOME\tDURATION\tERROR")
	for _, d := range ds {
		outcome, duration := outcomeOf(d.Outcome), "-"
		if d.Outcome == nil && d.Step != "" {
			outcome += " (" + d.Step + ")"
		}
		if d.Ended != nil {
			duration = seconds(d.Ended.Sub(d.Started).Seconds())
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, ago(now, d.Started), d.Deployment, orDash(d.Tag),
			orDash(shortDigest(d.Digest)), orDash(d.Trigger), orDash(who(d)), outcome, duration, trimText(d.Error, 60))
	}
	tw.Flush()
}

// who asked for a deploy: the API token's name, the pusher, or both for
// an approved push.
func who(d deployJSON) string {
	switch {
	case d.Actor != "" && d.Pusher != "" && d.Actor != d.Pusher:
		return d.Pusher + ", approved by " + d.Actor
	case d.Actor != "":
		return d.Actor
	}
	return d.Pusher
}

// --- deploy, rollback, approve ---

// WaitFlags are the flags of the commands that start a deploy.
type WaitFlags struct {
	Wait    bool          `help:"Follow the deploy: a line per step, then its outcome. Exit 0 only if it succeeded (or the version already ran), 1 otherwise."`
	Timeout time.Duration `default:"15m" help:"With --wait: give up waiting after this long (exit 1); the deploy goes on."`
}

func (w *WaitFlags) check() error {
	if w.Timeout <= 0 {
		return usagef("--timeout %s: want a positive duration, e.g. 15m", w.Timeout)
	}
	return nil
}

type deployCmd struct {
	Deployment string `arg:"" help:"The deployment, as named in the daemon's config."`
	Ref        string `arg:"" name:"tag|@digest" help:"A tag of the deployment's image (v1.4.2), or a digest (@sha256:...)."`
	WaitFlags
}

func (c *deployCmd) Help() string {
	return `The deploy runs as a pushed one does: pull, the deployment's strategy, its
health gate, a rollback if the new container fails. It is queued behind a
deploy in progress, and runs even if the deployment is paused or its
environment requires approval (asking is approving). Needs the scope
deploy:<environment>.

Example, in CI: LIFTOFF_TOKEN=... liftoff deploy web-staging v1.4.2 --wait`
}

var (
	cliTagGrammar    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	cliDigestGrammar = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
)

// ref splits TAG|@sha256:... into a tag or a digest.
func (c *deployCmd) ref() (tag, digest string, err error) {
	r := strings.TrimPrefix(c.Ref, "@")
	switch {
	case strings.HasPrefix(r, "sha256:"):
		if !cliDigestGrammar.MatchString(r) {
			return "", "", usagef("%q is not a digest: want @sha256: and 64 lowercase hex digits", trimText(c.Ref, 80))
		}
		return "", r, nil
	case !cliTagGrammar.MatchString(c.Ref):
		return "", "", usagef("%q is not a tag (letters, digits, _ . -, at most 128, not starting with . or -) nor @sha256:<digest>", trimText(c.Ref, 80))
	}
	return c.Ref, "", nil
}

func (c *deployCmd) check() error {
	if _, _, err := c.ref(); err != nil {
		return err
	}
	return c.WaitFlags.check()
}

func (c *deployCmd) Run(s *cliSession) error {
	tag, digest, _ := c.ref() // checked
	body := map[string]string{"tag": tag}
	if digest != "" {
		body = map[string]string{"digest": digest}
	}
	var d deliveryJSON
	a, err := s.api.post(s.ctx, deploymentPath(c.Deployment, "deploy"), body, &d)
	if err != nil {
		return s.explainFor(err, c.Deployment)
	}
	what := fmt.Sprintf("deploy of %s to %s", refOf(tag, digest), c.Deployment)
	return s.started(a, followed{deployment: c.Deployment, delivery: d.Delivery, tag: tag, digest: digest, what: what}, c.WaitFlags)
}

type rollbackCmd struct {
	Deployment string `arg:"" help:"The deployment, as named in the daemon's config."`
	To         int64  `placeholder:"ID" help:"Go back to what deploy ID deployed (an id of liftoff history; it must have succeeded)."`
	WaitFlags
}

func (c *rollbackCmd) Help() string {
	return `Without --to: back to the digest of the newest succeeded deploy whose
digest differs from the one running. The image is pulled again if the
engine no longer has it; the deploy goes through the health gate like any
other. Fails (409) when there is nothing to go back to. Needs the scope
deploy:<environment>.`
}

func (c *rollbackCmd) check() error {
	if c.To < 0 {
		return usagef("--to %d: want a deploy id", c.To)
	}
	return c.WaitFlags.check()
}

func (c *rollbackCmd) Run(s *cliSession) error {
	body := map[string]int64{}
	what := "rollback of " + c.Deployment
	if c.To != 0 {
		body["to"] = c.To
		what = fmt.Sprintf("rollback of %s to deploy #%d", c.Deployment, c.To)
	}
	var d deliveryJSON
	a, err := s.api.post(s.ctx, deploymentPath(c.Deployment, "rollback"), body, &d)
	if err != nil {
		return s.explainFor(err, c.Deployment)
	}
	return s.started(a, followed{deployment: c.Deployment, delivery: d.Delivery, what: what}, c.WaitFlags)
}

type approveCmd struct {
	Deployment string `arg:"" help:"The deployment whose pending push to approve."`
	WaitFlags
}

func (c *approveCmd) Help() string {
	return `In an environment with approval required, a push is not deployed until
someone approves it (liftoff status marks it PENDING). Fails (409) when no
push is pending. Needs the scope approve:<environment>.`
}

func (c *approveCmd) Run(s *cliSession) error {
	var d deliveryJSON
	a, err := s.api.post(s.ctx, deploymentPath(c.Deployment, "approve"), struct{}{}, &d)
	if err != nil {
		return s.explainFor(err, c.Deployment)
	}
	return s.started(a, followed{deployment: c.Deployment, delivery: d.Delivery, what: "approved push to " + c.Deployment}, c.WaitFlags)
}

// started reports a deploy the daemon accepted (202), and follows it with
// --wait.
func (s *cliSession) started(a answer, f followed, w WaitFlags) error {
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

// --- reject, pause, resume ---

type rejectCmd struct {
	Deployment string `arg:"" help:"The deployment whose pending push to reject."`
}

func (c *rejectCmd) Help() string {
	return `The pending push is dropped (outcome rejected); a later push may be
approved. Fails (409) when no push is pending. Needs the scope
approve:<environment>.`
}

func (c *rejectCmd) Run(s *cliSession) error {
	var d deliveryJSON
	a, err := s.api.post(s.ctx, deploymentPath(c.Deployment, "reject"), struct{}{}, &d)
	if err != nil {
		return s.explainFor(err, c.Deployment)
	}
	if s.json {
		return s.printJSON(a.body)
	}
	fmt.Fprintf(s.stdout, "Rejected the push pending for %s (delivery %s): it will not be deployed.\n", c.Deployment, d.Delivery)
	return nil
}

type pauseCmd struct {
	Deployment string `arg:"" help:"The deployment to pause."`
}

func (c *pauseCmd) Help() string {
	return `While paused, pushes matching the deployment are recorded and held, not
deployed; resume deploys the newest one. A deploy in progress finishes.
liftoff deploy and rollback still deploy. Fails (409) if already paused.
Needs the scope deploy:<environment>.`
}

func (c *pauseCmd) Run(s *cliSession) error {
	var d deploymentJSON
	a, err := s.api.post(s.ctx, deploymentPath(c.Deployment, "pause"), struct{}{}, &d)
	if err != nil {
		return s.explainFor(err, c.Deployment)
	}
	if s.json {
		return s.printJSON(a.body)
	}
	fmt.Fprintf(s.stdout, "Paused %s: pushes are held until liftoff resume %s.\n", c.Deployment, c.Deployment)
	return nil
}

type resumeCmd struct {
	Deployment string `arg:"" help:"The deployment to resume."`
}

func (c *resumeCmd) Help() string {
	return `Pushes deploy again; the newest push held while paused deploys now.
Fails (409) if not paused. Needs the scope deploy:<environment>.`
}

func (c *resumeCmd) Run(s *cliSession) error {
	var d struct {
		deploymentJSON
		// The push held meanwhile, sent on: queued, or pending approval.
		Resumed *struct {
			Delivery, Tag, Digest, State string
		} `json:"resumed"`
	}
	a, err := s.api.post(s.ctx, deploymentPath(c.Deployment, "resume"), struct{}{}, &d)
	if err != nil {
		return s.explainFor(err, c.Deployment)
	}
	if s.json {
		return s.printJSON(a.body)
	}
	fmt.Fprintf(s.stdout, "Resumed %s: pushes deploy again.\n", c.Deployment)
	if h := d.Resumed; h != nil {
		what := "deploys now"
		if h.State == "pending" {
			what = "awaits approval"
		}
		fmt.Fprintf(s.stdout, "The push held meanwhile, %s (delivery %s), %s: liftoff history --delivery %s\n",
			refOf(h.Tag, h.Digest), h.Delivery, what, h.Delivery)
	}
	return nil
}

// --- output helpers ---

// table is a tabwriter whose lines lose their trailing blanks (a last
// column empty on some rows).
type table struct {
	*tabwriter.Writer
	buf bytes.Buffer
	out io.Writer
}

func newTable(out io.Writer) *table {
	t := &table{out: out}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 4, 2, ' ', 0)
	return t
}

func (t *table) Flush() {
	t.Writer.Flush()
	for line := range strings.Lines(t.buf.String()) {
		fmt.Fprintln(t.out, strings.TrimRight(line, " \n"))
	}
	t.buf.Reset()
}

// printJSON prints an answer as the API gave it, indented.
func (s *cliSession) printJSON(body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return failf("the server's answer is not JSON: %v", err)
	}
	buf.WriteByte('\n')
	_, err := s.stdout.Write(buf.Bytes())
	return err
}

// progress is where --wait writes its lines: stdout, or stderr when stdout
// carries JSON.
func (s *cliSession) progress() io.Writer {
	if s.json {
		return s.stderr
	}
	return s.stdout
}

// shortDigest: the first 12 hex digits, as docker shows image ids.
func shortDigest(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok {
		d = hex
	}
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

// refOf names what a deploy deploys: its tag, else its digest.
func refOf(tag, digest string) string {
	switch {
	case tag != "":
		return tag
	case digest != "":
		return "@" + digest
	}
	return ""
}

func outcomeOf(o *string) string {
	if o == nil {
		return "running"
	}
	return *o
}

// goodOutcome: what --wait exits 0 for.
func goodOutcome(o string) bool {
	return o == "succeeded" || o == "unchanged"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ago says when t was, relative to now: "just now", "42s ago", "5m ago",
// "3h ago", "2d ago"; or "in 3h" for a time to come.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d/time.Hour))
	default:
		s = fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// seconds formats a duration given in seconds: 0.42s, 8.3s, 2m05s.
func seconds(sec float64) string {
	switch {
	case sec < 0:
		return "-"
	case sec < 10:
		return strconv.FormatFloat(sec, 'f', 2, 64) + "s"
	case sec < 60:
		return strconv.FormatFloat(sec, 'f', 1, 64) + "s"
	}
	d := time.Duration(sec * float64(time.Second)).Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
}

// stepOrder is the order of a deploy's steps (deploy/journal.go), for
// printing its phases.
var stepOrder = []string{"resolve", "pull", "prepare", "stop", "rename", "create", "start", "gate", "publish", "cleanup", "rollback"}

// phasesLine lists phases in step order: "resolve 0.05s, pull 2.31s".
func phasesLine(phases map[string]float64) string {
	keys := make([]string, 0, len(phases))
	for k := range phases {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if i := slices.Index(stepOrder, k); i >= 0 {
			return i
		}
		return len(stepOrder)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + " " + seconds(phases[k])
	}
	return strings.Join(parts, ", ")
}
