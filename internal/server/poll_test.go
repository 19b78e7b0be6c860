package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/poll"
)

// fakePolls is a control.Polls: what the polls of each deployment did.
type fakePolls map[string]poll.Status

var _ control.Polls = fakePolls{}

func (f fakePolls) Status(d string) (poll.Status, bool) {
	s, ok := f[d]
	return s, ok
}

// polledConfig is uiConfig with web-staging polled every 5 minutes.
var polledConfig = strings.Replace(uiConfig, "    environment: staging\n", "    environment: staging\n    poll: {interval: 5m}\n", 1)

// apiGet answers GET path of the API with the reader's token, decoded.
func (u *uiHarness) apiGet(t *testing.T, path string, v any) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("Authorization", "Bearer "+uiRead)
	w := u.browser(t).do(r)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// TestAPIAndPageShowPolls: a polled deployment shows its interval, when it
// was last polled, what the registry answered and the next poll, in the
// API and on its card; one not polled has no poll at all.
func TestAPIAndPageShowPolls(t *testing.T) {
	u := newUIHarness(t)
	var list apiv1.Deployments
	u.apiGet(t, "/api/v1/deployments", &list)
	for _, d := range list.Deployments {
		if d.Poll != nil {
			t.Errorf("%s is not polled, yet has poll %+v", d.Name, d.Poll)
		}
	}
	b := u.browser(t)
	b.login(uiRead)
	if body := b.get("/").Body.String(); strings.Contains(body, `class="poll"`) {
		t.Error("the overview shows a poll, none is configured")
	}

	u.cfg.Store(parseUIConfig(t, polledConfig))
	// Planned, not polled yet: the interval only.
	var d apiv1.DeploymentDetail
	u.apiGet(t, "/api/v1/deployments/web-staging", &d)
	if p := d.Poll; p == nil || p.IntervalSeconds != 300 || p.Polled != nil || p.Result != "" || p.Next != nil {
		t.Errorf("web-staging before its first poll: %+v", p)
	}

	u.polls["web-staging"] = poll.Status{Polled: testNow.Add(-42 * time.Second), Result: "ok", Next: testNow.Add(4*time.Minute + 18*time.Second)}
	u.apiGet(t, "/api/v1/deployments/web-staging", &d)
	if p := d.Poll; p == nil || p.IntervalSeconds != 300 || p.Polled == nil || !p.Polled.Equal(testNow.Add(-42*time.Second)) ||
		p.Result != "ok" || p.Next == nil || !p.Next.Equal(testNow.Add(4*time.Minute+18*time.Second)) {
		t.Errorf("web-staging polled: %+v", p)
	}
	u.apiGet(t, "/api/v1/deployments", &list)
	for _, d := range list.Deployments {
		if (d.Poll != nil) != (d.Name == "web-staging") {
			t.Errorf("%s: poll %+v", d.Name, d.Poll)
		}
	}

	body := b.get("/deployments/web-staging").Body.String()
	for _, want := range []string{`<p class="poll">polled every 5m00s`, ">42s ago</time>:", `<span class="poll-ok">ok</span>`, "· next <time", ">in 4m</time></p>"} {
		if !strings.Contains(body, want) {
			t.Errorf("the card lacks %q:\n%s", want, body)
		}
	}
	if body := b.get("/deployments/web-prod").Body.String(); strings.Contains(body, `class="poll"`) {
		t.Error("web-prod's card shows a poll")
	}

	// What the registry answered, as the poller put it.
	u.polls["web-staging"] = poll.Status{Polled: testNow.Add(-time.Minute), Result: "unauthorized: authentication required <b>", Next: testNow.Add(time.Minute)}
	u.apiGet(t, "/api/v1/deployments/web-staging", &d)
	if d.Poll == nil || d.Poll.Result != "unauthorized: authentication required <b>" {
		t.Errorf("web-staging after a failed poll: %+v", d.Poll)
	}
	body = b.get("/").Body.String()
	if !strings.Contains(body, `<span class="poll-err">unauthorized: authentication required &lt;b&gt;</span>`) {
		t.Errorf("the overview does not show the poll's error:\n%s", body)
	}
}
