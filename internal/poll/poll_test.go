package poll_test

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Fifty deployments of one tag of one repository make one poll: one
// manifest request per interval, not fifty.
func TestPollOneRequestPerIntervalForFiftyDeployments(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push(t, "acme/fifty", "staging")
	for i := range 50 {
		f.current["d"+itoa(i)] = []string{digest}
	}
	f.start(t, deploymentsYAML(50, "acme/fifty", "[staging]", "10s"))
	f.clock.settle(t, 1) // the first poll, at once (no jitter)
	if got := f.requests.get("manifest"); got != 1 {
		t.Fatalf("first poll: %d manifest requests, want 1", got)
	}
	f.clock.advance(t, 1, 50*time.Second, time.Second)
	if got := f.requests.get("manifest"); got != 6 {
		t.Errorf("after 5 intervals: %d manifest requests, want 6 (one per interval)", got)
	}
	if p := f.delivered(); len(p) != 0 {
		t.Errorf("delivered %v, though every deployment runs the digest", p)
	}
	if n := f.count(t, "unchanged"); n != 6 {
		t.Errorf("polls counted unchanged: %d, want 6", n)
	}
	s, ok := f.poller.Status("d17")
	if !ok || s.Result != "ok" || s.Polled.IsZero() || !s.Next.After(s.Polled) {
		t.Errorf("Status(d17) = %+v, %v", s, ok)
	}
}

// semver:^1 takes the highest 1.x.y: 1.10.0 over 1.9.3, not 2.0.0, not a
// pre-release; and a new digest is delivered once.
func TestPollSemverTakesHighestAllowed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, tag := range []string{"1.9.3", "2.0.0", "1.11.0-rc1", "latest", "v1.2.0"} {
		f.push(t, "acme/semver", tag)
	}
	want := f.push(t, "acme/semver", "1.10.0")
	f.start(t, deploymentsYAML(1, "acme/semver", `["semver:^1"]`, "1m"))
	f.clock.settle(t, 1)
	f.clock.advance(t, 1, 2*time.Minute, time.Minute)
	p := f.delivered()
	if len(p) != 1 || p[0].Tag != "1.10.0" || p[0].Digest != want || p[0].Repo != f.reg.Host()+"/acme/semver" {
		t.Fatalf("delivered %+v, want 1.10.0 (%s) once", p, want)
	}
	if n := f.count(t, "new"); n != 1 {
		t.Errorf("polls counted new: %d, want 1", n)
	}
}

// A 429 with Retry-After: 3 is not asked again for 3 seconds, however
// short the interval.
func TestPollHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	var limited atomic.Bool
	f := newFixture(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/manifests/") && limited.Load() {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	f.push(t, "acme/limited", "staging")
	limited.Store(true)
	f.start(t, deploymentsYAML(1, "acme/limited", "[staging]", "1s"))
	f.clock.settle(t, 1)
	if got := f.requests.get("manifest"); got != 1 {
		t.Fatalf("first poll: %d manifest requests, want 1 (a 429 is not retried at once)", got)
	}
	s, _ := f.poller.Status("d0")
	if !strings.Contains(s.Result, "rate limited") || s.Next.Sub(s.Polled) < 3*time.Second {
		t.Errorf("Status after a 429 = %+v: want the error and the next poll 3s on", s)
	}
	f.clock.advance(t, 1, 2*time.Second, time.Second)
	if got := f.requests.get("manifest"); got != 1 {
		t.Fatalf("2s after a 429 with Retry-After: 3: %d manifest requests, want still 1", got)
	}
	limited.Store(false)
	f.clock.advance(t, 1, time.Second, time.Second)
	if got := f.requests.get("manifest"); got != 2 {
		t.Errorf("3s after: %d manifest requests, want 2", got)
	}
	if n := f.count(t, "rate_limited"); n != 1 {
		t.Errorf("polls counted rate_limited: %d, want 1", n)
	}
	if p := f.delivered(); len(p) != 1 {
		t.Errorf("delivered %+v once the registry answered, want 1 push", p)
	}
}

// A registry that is down makes its polls back off and fail quietly:
// nothing is delivered, the log says so once, and once again when it
// answers; a digest pushed meanwhile is delivered then.
func TestPollRegistryDownLogsOnceAndRecovers(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	f := newFixture(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if down.Load() && r.URL.Path != "/v2/" {
				http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	first := f.push(t, "acme/down", "staging")
	f.current["d0"] = []string{first}
	f.start(t, deploymentsYAML(1, "acme/down", "[staging]", "1s"))
	f.clock.settle(t, 1)
	down.Store(true)
	f.clock.advance(t, 1, 20*time.Second, time.Second)
	failedPolls := f.count(t, "error")
	// Backoff 1, 2, 4, 8 s: about five polls in twenty seconds, not twenty.
	if failedPolls < 3 || failedPolls > 6 {
		t.Errorf("%d failed polls in 20s at 1s with backoff, want 3 to 6", failedPolls)
	}
	if p := f.delivered(); len(p) != 0 {
		t.Errorf("delivered %+v while the registry was down", p)
	}
	s, _ := f.poller.Status("d0")
	if s.Result == "ok" || strings.Contains(s.Result, "\n") {
		t.Errorf("Status while down: %+v", s)
	}
	down.Store(false)
	second := f.push(t, "acme/down", "staging")
	f.clock.advance(t, 1, 16*time.Second, time.Second)
	if p := f.delivered(); len(p) != 1 || p[0].Digest != second {
		t.Errorf("after recovery delivered %+v, want %s once", p, second)
	}
	logs := f.logs.String()
	if n := strings.Count(logs, "poll failed"); n != 1 {
		t.Errorf("failure logged %d times, want once:\n%s", n, logs)
	}
	if n := strings.Count(logs, "answers again"); n != 1 {
		t.Errorf("recovery logged %d times, want once:\n%s", n, logs)
	}
}

// tags/list is followed page by page (the Link header).
func TestPollFollowsTagPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, pageTags(2))
	for _, tag := range []string{"1.0.0", "1.0.1", "1.0.2", "1.0.3"} {
		f.push(t, "acme/pages", tag)
	}
	want := f.push(t, "acme/pages", "1.0.4")
	f.start(t, deploymentsYAML(1, "acme/pages", `["semver:~1.0"]`, "1m"))
	f.clock.settle(t, 1)
	if got := f.requests.get("tags"); got != 3 {
		t.Errorf("%d tags/list pages asked for 5 tags by 2, want 3", got)
	}
	if p := f.delivered(); len(p) != 1 || p[0].Tag != "1.0.4" || p[0].Digest != want {
		t.Errorf("delivered %+v, want 1.0.4 from the last page", p)
	}
}

// glob: learns the tags there are at its first listing, then delivers a
// tag that appears, even if the poll that first lists it fails.
func TestPollGlobDeliversNewTag(t *testing.T) {
	t.Parallel()
	var failing atomic.Bool
	f := newFixture(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failing.Load() && strings.Contains(r.URL.Path, "/manifests/") && r.Method == http.MethodHead {
				http.Error(w, "no", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	f.push(t, "acme/glob", "release-1")
	f.start(t, deploymentsYAML(2, "acme/glob", `["glob:release-*"]`, "1m"))
	f.clock.settle(t, 1)
	want := f.push(t, "acme/glob", "release-2")
	f.push(t, "acme/glob", "other-3")
	failing.Store(true)
	f.clock.advance(t, 1, time.Minute, time.Minute)
	if p := f.delivered(); len(p) != 0 || f.count(t, "error") != 1 {
		t.Fatalf("delivered %+v while the look-up failed", p)
	}
	failing.Store(false)
	f.clock.advance(t, 1, time.Minute, time.Minute)
	if p := f.delivered(); len(p) != 1 || p[0].Tag != "release-2" || p[0].Digest != want {
		t.Errorf("delivered %+v, want release-2 once", p)
	}
}

// While a deploy of the deployment runs or waits (a webhook's), a poll
// delivers nothing and records nothing: the next one decides.
func TestPollWaitsWhileBusy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	digest := f.push(t, "acme/busy", "staging")
	f.busy["d0"] = true
	f.start(t, deploymentsYAML(1, "acme/busy", "[staging]", "1m"))
	f.clock.settle(t, 1)
	if p := f.delivered(); len(p) != 0 {
		t.Fatalf("delivered %+v while busy", p)
	}
	f.mu.Lock()
	f.busy["d0"] = false
	f.mu.Unlock()
	f.clock.advance(t, 1, time.Minute, time.Minute)
	if p := f.delivered(); len(p) != 1 || p[0].Digest != digest {
		t.Errorf("delivered %+v once the deployment was idle, want %s", p, digest)
	}
}

// A reload re-plans: a removed deployment stops, a changed interval
// applies, and what was delivered is not delivered again.
func TestPollReplanKeepsDelivered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.push(t, "acme/replan", "staging")
	f.start(t, deploymentsYAML(1, "acme/replan", "[staging]", "1m"))
	f.clock.settle(t, 1)
	if p := f.delivered(); len(p) != 1 {
		t.Fatalf("delivered %+v, want 1", p)
	}
	f.load(t, deploymentsYAML(1, "acme/replan", "[staging]", "10s")+
		"  - name: other\n    image: REG/acme/replan2\n    tags: [x]\n    poll: {interval: 10s}\n")
	f.poller.Replan()
	f.clock.advance(t, 2, 30*time.Second, 10*time.Second)
	if got := f.requests.get("manifest"); got < 4 {
		t.Errorf("%d manifest requests 30s after the interval became 10s, want at least 4", got)
	}
	if p := f.delivered(); len(p) != 1 {
		t.Errorf("delivered %+v after a replan, want the first push only", p)
	}
	if _, ok := f.poller.Status("other"); !ok {
		t.Error("the added deployment is not polled")
	}
	f.load(t, "deployments:\n  - name: other\n    image: REG/acme/replan2\n    tags: [x]\n")
	f.poller.Replan()
	if _, ok := f.poller.Status("d0"); ok {
		t.Error("a removed deployment is still polled")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// A glob rule's new tag that first shows while the deployment is busy is
// not lost: the listing is not taken as seen until the tag is decided.
func TestPollGlobNewTagWhileBusy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.push(t, "acme/globbusy", "release-1")
	f.start(t, deploymentsYAML(1, "acme/globbusy", `["glob:release-*"]`, "1m"))
	f.clock.settle(t, 1)
	f.mu.Lock()
	f.busy["d0"] = true
	f.mu.Unlock()
	want := f.push(t, "acme/globbusy", "release-2")
	f.clock.advance(t, 1, time.Minute, time.Minute)
	if p := f.delivered(); len(p) != 0 {
		t.Fatalf("delivered %+v while busy", p)
	}
	f.mu.Lock()
	f.busy["d0"] = false
	f.mu.Unlock()
	f.clock.advance(t, 1, time.Minute, time.Minute)
	if p := f.delivered(); len(p) != 1 || p[0].Tag != "release-2" || p[0].Digest != want {
		t.Errorf("delivered %+v once idle, want release-2", p)
	}
}
