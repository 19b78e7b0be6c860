package cli

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/poll"
	"github.com/liftoff-deploy/liftoff/internal/server"
)

// The round trip: the real server's handlers (internal/server over fakes
// of the engine, the history and the poller) answer, and the CLI decodes
// every answer strictly (Env.Strict: a field apiv1's type lacks fails the
// command), for every route of /api/v1.

const rtReader = "cli-roundtrip-reader-0123456789ab"

// rtStager may read the logs of staging's deploys, and nothing else.
const rtStager = "cli-roundtrip-stager-0123456789ab"

const rtConfig = `
api_tokens:
  - {name: root, token: ` + testToken + `, scopes: [admin]}
  - {name: reader, token: ` + rtReader + `, scopes: [read]}
  - {name: stager, token: ` + rtStager + `, scopes: ["logs:staging"]}
environments:
  staging: {}
  production:
    approval: {required: true, timeout: 1h}
deployments:
  - name: web-staging
    image: acme/web
    tags: [staging]
    environment: staging
    poll: {interval: 5m}
  - name: web-prod
    image: acme/web
    tags: [latest]
    environment: production
  - name: worker
    image: acme/worker
    tags: [latest]
    environment: staging
`

// rtEngine is a control.Engine where everything a deployment can show is
// there: web-prod runs, has a push pending and is paused with a push held;
// web-staging is down; worker's engine does not answer.
type rtEngine struct {
	mu     sync.Mutex
	now    time.Time
	paused map[string]*deploy.Pause
}

func (e *rtEngine) push(d, delivery string, state deploy.Disposition) *deploy.Request {
	return &deploy.Request{ID: 12, Deployment: d, Image: "docker.io/acme/web", Tag: "v2", Digest: digestB, Trigger: "dockerhub",
		Delivery: delivery, Pusher: "alice", Received: e.now.Add(-time.Minute), State: state, Expires: e.now.Add(time.Hour)}
}

func (e *rtEngine) Enqueue(_ context.Context, rs ...deploy.Request) ([]deploy.Disposition, error) {
	out := make([]deploy.Disposition, len(rs))
	for i := range out {
		out[i] = deploy.Queued
	}
	return out, nil
}

func (e *rtEngine) Status(d string) deploy.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := deploy.Status{Paused: e.paused[d]}
	if d == "web-prod" {
		st.Pending = e.push(d, "d-pending", deploy.Pending)
	}
	if st.Paused != nil {
		st.Held = e.push(d, "d-held", deploy.Held)
	}
	return st
}

func (e *rtEngine) Running(_ context.Context, d string) (*deploy.Container, error) {
	if d == "worker" {
		return nil, errors.New("dial tcp 10.0.0.9:2376: connection refused")
	}
	return &deploy.Container{ID: "c0ffee", Name: d, Status: "running", Running: true, Health: "healthy", StartedAt: e.now.Add(-time.Hour),
		Labels: map[string]string{deploy.LabelTag: "v1", deploy.LabelDigest: digestA}}, nil
}

func (e *rtEngine) Down() map[string]error {
	return map[string]error{"web-staging": errors.New("container exited (code 1)")}
}

func (e *rtEngine) Pause(_ context.Context, d, actor string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.paused[d] != nil {
		return deploy.ErrPaused
	}
	e.paused[d] = &deploy.Pause{Deployment: d, Paused: true, Actor: actor, Since: e.now}
	return nil
}

func (e *rtEngine) Unpause(_ context.Context, d, _ string) (*deploy.Request, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.paused[d] == nil {
		return nil, deploy.ErrNotPaused
	}
	delete(e.paused, d)
	return e.push(d, "d-held", deploy.Queued), nil
}

// Approve and Reject decide web-prod's pending push, request 12.
func (e *rtEngine) Approve(_ context.Context, d, _ string, want deploy.Decision) (deploy.Request, error) {
	if want.Request != 12 {
		return *e.push(d, "d-pending", deploy.Pending), deploy.ErrNotThePending
	}
	return *e.push(d, "d-pending", deploy.Queued), nil
}

func (e *rtEngine) Reject(_ context.Context, d, _ string, want deploy.Decision) (deploy.Request, error) {
	if want.Request != 12 {
		return *e.push(d, "d-pending", deploy.Pending), deploy.ErrNotThePending
	}
	return *e.push(d, "d-pending", deploy.Pending), nil
}

// rtHistory is a control.History of three deploys (one succeeded, one
// running, one interrupted) and a delivery, every field filled in.
type rtHistory struct{ deploys []deploy.Record }

func newRTHistory(now time.Time) *rtHistory {
	started := now.Add(-2 * time.Hour)
	return &rtHistory{deploys: []deploy.Record{ // newest first
		{ID: 3, Deployment: "web-staging", Environment: "staging", Image: "docker.io/acme/web", Tag: "v3", Digest: digestB,
			Previous: digestA, Trigger: "dockerhub", Delivery: "d3", Pusher: "alice", Outcome: deploy.RolledBack, Open: true,
			Error: "interrupted at step gate", Started: now.Add(-time.Minute), Ended: now.Add(-30 * time.Second),
			Phases: map[string]time.Duration{deploy.StepPull: time.Second, deploy.StepGate: 20 * time.Second}},
		{ID: 2, Deployment: "web-staging", Environment: "staging", Image: "docker.io/acme/web", Tag: "v2", Trigger: "api",
			Actor: "root", Delivery: "d2", Step: deploy.StepGate, Started: now.Add(-10 * time.Second)},
		{ID: 1, Deployment: "web-prod", Environment: "production", Image: "docker.io/acme/web", Tag: "v1", Digest: digestA,
			Previous: digestB, Trigger: "dockerhub", Delivery: "d1", Pusher: "alice", Actor: "lead", Outcome: deploy.Succeeded,
			Started: started, Ended: started.Add(40 * time.Second), ReleaseOutput: "Applying migrations... OK",
			Phases: map[string]time.Duration{deploy.StepResolve: time.Second, deploy.StepRelease: 9 * time.Second, deploy.StepGate: 30 * time.Second}},
	}}
}

func (h *rtHistory) Deploys(_ context.Context, q deploy.DeployQuery) ([]deploy.Record, int64, error) {
	var out []deploy.Record
	for _, r := range h.deploys {
		if (q.Deployment == "" || r.Deployment == q.Deployment) && (q.Delivery == "" || r.Delivery == q.Delivery) &&
			(q.Outcome == "" || string(r.Outcome) == q.Outcome) && (q.Environment == "" || r.Environment == q.Environment) &&
			(q.Before == 0 || r.ID < q.Before) {
			out = append(out, r)
		}
	}
	if q.Limit > 0 && len(out) > q.Limit {
		return out[:q.Limit], out[q.Limit-1].ID, nil
	}
	return out, 0, nil
}

func (h *rtHistory) Deploy(_ context.Context, id int64) (deploy.Record, bool, error) {
	i := slices.IndexFunc(h.deploys, func(r deploy.Record) bool { return r.ID == id })
	if i < 0 {
		return deploy.Record{}, false, nil
	}
	return h.deploys[i], true, nil
}

func (h *rtHistory) LastSucceeded(_ context.Context, d, except string) (deploy.Record, bool, error) {
	r := h.deploys[2]
	return r, d == r.Deployment && r.Digest != except || d == "web-staging", nil
}

func (h *rtHistory) Deliveries(_ context.Context, limit int, _ int64) ([]deploy.Delivery, int64, error) {
	ds := []deploy.Delivery{{ID: "d1", Source: "dockerhub", Image: "docker.io/acme/web", Tag: "latest", Pusher: "alice",
		Actor: "lead", Received: h.deploys[2].Started, Accepted: []string{"web-prod"},
		Ignored: []deployments.Ignored{{Deployment: "web-staging", Reason: "tag latest matches none of its tags"}, {Tag: "sha256-x.sig", Reason: "a signature"}}}}
	return ds[:min(limit, len(ds))], 1, nil
}

// rtPolls says web-staging was polled a minute ago and the registry
// refused.
type rtPolls struct{ now time.Time }

func (p rtPolls) Status(d string) (poll.Status, bool) {
	return poll.Status{Polled: p.now.Add(-time.Minute), Result: "unauthorized: authentication required", Next: p.now.Add(4 * time.Minute)},
		d == "web-staging"
}

var (
	_ control.Engine  = (*rtEngine)(nil)
	_ control.History = (*rtHistory)(nil)
	_ control.Polls   = rtPolls{}
)

// rtDaemon serves the real server's handlers over the fakes, and notes the
// route pattern of every request it answers.
type rtDaemon struct {
	url    string
	routes chi.Routes
	mu     sync.Mutex
	hit    map[string]bool // "GET /api/v1/deployments/{name}"
}

func newRTDaemon(t *testing.T) *rtDaemon {
	t.Helper()
	cfg, err := deployments.Parse([]byte(rtConfig), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	srv := server.New(server.Options{
		Catalogue:    func() server.Catalogue { return cfg },
		DeployEngine: &rtEngine{now: now, paused: map[string]*deploy.Pause{"web-prod": {Deployment: "web-prod", Paused: true, Actor: "lead", Since: now.Add(-time.Hour)}}},
		History:      newRTHistory(now),
		Polls:        rtPolls{now: now},
		Logger:       zerolog.Nop(),
	})
	d := &rtDaemon{hit: map[string]bool{}, routes: srv.Handler().(chi.Routes)}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rctx := chi.NewRouteContext()
		srv.Handler().ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx)))
		d.mu.Lock()
		d.hit[r.Method+" "+rctx.RoutePattern()] = true
		d.mu.Unlock()
	}))
	t.Cleanup(ts.Close)
	d.url = ts.URL
	return d
}

// run runs a client command with strict decoding.
func (d *rtDaemon) run(t *testing.T, token string, args ...string) cliResult {
	t.Helper()
	env := map[string]string{"LIFTOFF_TOKEN": token, "LIFTOFF_SERVER": d.url}
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errOut, Poll: 2 * time.Millisecond, Strict: true,
		Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	return cliResult{code, out.String(), errOut.String()}
}

// TestCLIDecodesEveryAnswer: every answer of every /api/v1 route, from
// the real handlers, decodes into the CLI's types with no field left over;
// the CLI's commands over them work; and no route of the API is left out.
func TestCLIDecodesEveryAnswer(t *testing.T) {
	t.Parallel()
	d := newRTDaemon(t)
	for _, tc := range []struct {
		token string
		args  []string
		code  int
		says  string
	}{
		{testToken, []string{"status"}, ExitOK, "worker: what runs is unknown: unavailable: container engine: dial tcp 10.0.0.9:2376"},
		{testToken, []string{"status", "--json"}, ExitOK, `"engine_error"`},
		{testToken, []string{"status", "web-staging"}, ExitOK, "web-staging: polled every 5m00s: last 1m ago, unauthorized: authentication required; next in 3m"},
		{testToken, []string{"status", "web-prod"}, ExitOK, "web-prod: HELD v2"},
		{testToken, []string{"status", "nope"}, ExitFailed, `no such deployment "nope" (404)`},
		{testToken, []string{"history"}, ExitOK, "alice, approved by lead"},
		{testToken, []string{"history", "web-staging", "--limit", "1"}, ExitOK, "Older: liftoff history web-staging --before 3"},
		{testToken, []string{"history", "--delivery", "d2"}, ExitOK, "running (gate)"},
		{testToken, []string{"logs", "1"}, ExitOK, "== release of deploy 1 (web-prod)\nApplying migrations... OK"},
		{testToken, []string{"logs", "99"}, ExitFailed, "no deploy 99 (404)"},
		{rtReader, []string{"logs", "1"}, ExitFailed, "refused (403): forbidden: this token lacks scope logs:production"},
		{rtStager, []string{"logs", "1"}, ExitFailed, "refused (403): forbidden: this token lacks scope logs:production"},
		{rtStager, []string{"logs", "99"}, ExitFailed, "(403)"}, // no probing which ids exist
		{rtStager, []string{"logs", "3"}, ExitOK, "Deploy 3 of web-staging: no backup or release output."},
		{testToken, []string{"deploy", "web-staging", "v2"}, ExitOK, "Accepted: deploy of v2 to web-staging (delivery "},
		{testToken, []string{"deploy", "web-staging", "@" + digestA, "--json"}, ExitOK, `"digest": "` + digestA + `"`},
		{testToken, []string{"rollback", "web-staging", "--to", "1"}, ExitFailed, "deploy 1 is not a deploy of web-staging (409)"},
		{testToken, []string{"rollback", "web-prod", "--to", "1", "--json"}, ExitOK, `"rollback_to": 1`},
		{testToken, []string{"rollback", "web-staging"}, ExitOK, "Accepted: rollback of web-staging (delivery "},
		{testToken, []string{"approve", "web-prod"}, ExitUsage, "run: liftoff approve web-prod --request 12 --digest " + digestB},
		{testToken, []string{"approve", "web-prod"}, ExitUsage, "request 12\n  tag      v2\n  digest   " + digestB},
		{testToken, []string{"approve", "web-prod", "--request", "12"}, ExitOK, "Accepted: approved push to web-prod (request 12, " + digestB + ") (delivery d-pending)."},
		{testToken, []string{"approve", "web-prod", "--request", "11"}, ExitFailed, "request 11 is no longer the push of web-prod awaiting approval: request 12 is (tag v2, digest " + digestB + ")"},
		{testToken, []string{"approve", "web-staging"}, ExitFailed, "no push of web-staging awaits approval"},
		{testToken, []string{"reject", "web-prod"}, ExitUsage, "run: liftoff reject web-prod --request 12"},
		{testToken, []string{"reject", "web-prod", "--request", "12"}, ExitOK, "Rejected the push pending for web-prod (request 12, delivery d-pending)"},
		{testToken, []string{"pause", "web-staging"}, ExitOK, "Paused web-staging"},
		{testToken, []string{"pause", "web-staging"}, ExitFailed, "(409)"},
		{testToken, []string{"resume", "web-staging"}, ExitOK, "The push held meanwhile, v2 (delivery d-held), deploys now"},
		{testToken, []string{"canary", "status", "web-prod"}, ExitOK, "web-prod: canary of v3 at step 2 of 3 (25% of clients) since "},
		{testToken, []string{"canary", "status", "web-prod"}, ExitOK, "ago: new 3 of 140 answered 5xx (2.14%), 1 unreachable, p99 25ms; old 0 of 2660 answered 5xx (0.00%), p99 5ms"},
		{testToken, []string{"canary", "status", "web-staging"}, ExitOK, "web-staging: no canary in progress."},
		{testToken, []string{"canary", "promote", "web-prod"}, ExitOK, "Canary of web-prod promoted: the new version gets all traffic (delivery d-canary)"},
		{testToken, []string{"canary", "abort", "web-prod", "--json"}, ExitOK, `"action": "abort"`},
		{testToken, []string{"canary", "abort", "web-staging"}, ExitFailed, "web-staging has no canary in progress (409)"},
		{rtReader, []string{"canary", "promote", "web-prod"}, ExitFailed, "refused (403): forbidden: this token lacks scope deploy:production"},
		{testToken, []string{"canary", "pause", "web-prod"}, ExitUsage, "must be one of"},
		{testToken, []string{"previews", "web-staging"}, ExitOK, "No previews of web-staging run."},
		{testToken, []string{"previews", "web-staging", "--json"}, ExitOK, `"previews": []`},
		{testToken, []string{"previews", "rm", "web-staging", "pr-1"}, ExitFailed, "(404)"},
		{rtReader, []string{"deploy", "web-prod", "v2"}, ExitFailed, "refused (403): forbidden: this token lacks scope deploy:production"},
		{"cli-roundtrip-unknown-0123456789ab", []string{"status"}, ExitFailed, "the daemon does not know this token (401)"},
	} {
		r := d.run(t, tc.token, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stdout+r.stderr, tc.says) || strings.Contains(r.stderr, "is not the JSON") ||
			strings.Contains(r.stderr, `{"error"`) { // an error body that did not decode is shown raw
			t.Errorf("liftoff %s: want exit %d and %q: %s", strings.Join(tc.args, " "), tc.code, tc.says, r)
		}
	}
	// read sees that a step failed and why (error), never the output.
	if r := d.run(t, rtReader, "history", "--json"); r.code != ExitOK || strings.Contains(r.stdout, "Applying migrations") || strings.Contains(r.stdout, "release_output") {
		t.Errorf("liftoff history --json with read shows the release's output: %s", r)
	}
	// What the CLI does not ask for, a Go client does: the same decoder.
	u, _ := url.Parse(d.url)
	c := &apiClient{base: u, token: testToken, http: http.DefaultClient, strict: true}
	for _, id := range []string{"abc", "0", "-1", "99999999999999999999"} {
		var se *apiStatusError
		if _, err := c.get(context.Background(), "/deploys/"+id+"/logs", nil, nil); !errors.As(err, &se) || se.status != http.StatusBadRequest {
			t.Errorf("GET /deploys/%s/logs: %v, want 400", id, err)
		}
	}
	var ds apiv1.Deliveries
	if _, err := c.get(context.Background(), "/deliveries", url.Values{"limit": {"10"}}, &ds); err != nil || len(ds.Deliveries) != 1 || ds.Next == nil {
		t.Errorf("GET /deliveries: %v %+v", err, ds)
	}
	var routes, missed []string
	chi.Walk(d.routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/api/v1/") {
			routes = append(routes, method+" "+route)
			if !d.hit[method+" "+route] {
				missed = append(missed, method+" "+route)
			}
		}
		return nil
	})
	if len(routes) < 10 {
		t.Errorf("the API's routes: %v", routes)
	}
	if len(missed) > 0 {
		t.Errorf("routes of the API no answer of was decoded: %v (asked: %v)", missed, d.hit)
	}
}

// TestCLIStrictRefusesUnknownFields: strict decoding has teeth.
func TestCLIStrictRefusesUnknownFields(t *testing.T) {
	t.Parallel()
	c := &apiClient{strict: true}
	var v apiv1.Deployments
	if err := c.decode(answer{body: []byte(`{"deployments":[{"name":"web","brand_new":1}]}`)}, &v); err == nil {
		t.Error("strict decoding took a field apiv1.Deployment lacks")
	}
	c.strict = false
	if err := c.decode(answer{body: []byte(`{"deployments":[{"name":"web","brand_new":1}]}`)}, &v); err != nil || v.Deployments[0].Name != "web" {
		t.Errorf("lenient decoding: %v %+v", err, v)
	}
}
