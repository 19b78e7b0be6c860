package proxy

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// canaryHarness routes web to old, with rolls 0, 1, 2, ... for new
// clients, so that weight w sends exactly w of each 100 of them to the
// canary.
func canaryHarness(t *testing.T) (*harness, *app) {
	t.Helper()
	h := newHarness(t)
	var n atomic.Int64
	h.p.rollFn = func() int { return int(n.Add(1)-1) % 100 }
	old := newApp(t, "old")
	h.configure(web())
	h.p.Switch("web", old.addr())
	return h, old
}

// TestCanarySplit: with a split on, weight percent of the new clients go
// to the canary, each told its draw by a cookie; a client with the cookie
// keeps its side while the weight stays and is not given another; ending
// the split sends everyone to the current upstream.
func TestCanarySplit(t *testing.T) {
	t.Parallel()
	h, old := canaryHarness(t)
	canary := newApp(t, "new")
	if err := h.p.Canary("web", canary.addr(), 30); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(h.p.met.weight.WithLabelValues("web")); got != 30 {
		t.Errorf("liftoff_canary_weight = %v, want 30", got)
	}
	sides := map[string]int{}
	for i := range 100 {
		res, body := h.get("web", "/")
		ck := res.Header.Get("Set-Cookie")
		want := CanaryCookie + "=" + splitCookie(h, i) // the harness draws 0, 1, 2, ...
		if !strings.HasPrefix(ck, want+";") || !strings.Contains(ck, "HttpOnly") {
			t.Fatalf("%s answered with Set-Cookie %q", body, ck)
		}
		sides[body]++
	}
	if sides["new"] != 30 || sides["old"] != 70 {
		t.Errorf("new clients went %v, want 30 new and 70 old", sides)
	}

	// Sticky: a client keeps its side while the weight stays.
	jar, _ := cookiejar.New(nil)
	sticky := &http.Client{Transport: h.client.Transport, Jar: jar, Timeout: deadline}
	first := ""
	for i := range 10 {
		res, err := sticky.Get(h.url("web", "/"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		side := res.Header.Get("X-Upstream")
		if i == 0 {
			first = side
		} else if side != first || res.Header.Get("Set-Cookie") != "" {
			t.Fatalf("a returning client moved from %s to %s, Set-Cookie %q", first, side, res.Header.Get("Set-Cookie"))
		}
	}

	if err := h.p.Canary("web", "", 0); err != nil {
		t.Fatal(err)
	}
	before := canary.served.Load()
	for range 20 {
		if res, err := sticky.Get(h.url("web", "/")); err != nil {
			t.Fatal(err)
		} else if res.Body.Close(); res.Header.Get("X-Upstream") != "old" || res.Header.Get("Set-Cookie") != "" {
			t.Fatalf("after the split: from %s, Set-Cookie %q", res.Header.Get("X-Upstream"), res.Header.Get("Set-Cookie"))
		}
	}
	if canary.served.Load() != before || old.served.Load() == 0 {
		t.Error("the canary got requests after the split ended")
	}
	if got := testutil.ToFloat64(h.p.met.weight.WithLabelValues("web")); got != 0 {
		t.Errorf("liftoff_canary_weight = %v after the split, want 0", got)
	}
}

// TestCanaryDrainAndPromote: a request in flight on the canary when the
// split ends is waited for by Drain; a promotion is Switch to the canary's
// upstream, after which the old one drains like any previous upstream.
func TestCanaryDrainAndPromote(t *testing.T) {
	t.Parallel()
	h, old := canaryHarness(t)
	slow := newBlocking(t, false)
	if err := h.p.Canary("web", slow.addr(), 100); err != nil {
		t.Fatal(err)
	}
	got := h.goGet("web", "/")
	recv(t, slow.entered, "the request on the canary")
	if err := h.p.Canary("web", "", 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := h.p.Drain(ctx, "web", slow.addr())
	cancel()
	if err == nil || !strings.Contains(err.Error(), "1 request still in flight") {
		t.Fatalf("Drain of the canary with a request on it: %v", err)
	}
	slow.free()
	if r := recv(t, got, "the canary's answer"); r.err != nil || r.body != "done\n" {
		t.Fatalf("the canary's request: %v %q", r.err, r.body)
	}
	ctx, cancel = context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := h.p.Drain(ctx, "web", slow.addr()); err != nil {
		t.Fatal(err)
	}

	// Promote: the canary becomes the upstream, the split ends.
	next := newApp(t, "next")
	if err := h.p.Canary("web", next.addr(), 50); err != nil {
		t.Fatal(err)
	}
	if prev := h.p.Switch("web", next.addr()); prev != old.addr() {
		t.Fatalf("Switch returned %s", prev)
	}
	if err := h.p.Canary("web", "", 0); err != nil {
		t.Fatal(err)
	}
	if err := h.p.Drain(ctx, "web", old.addr()); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, body := h.get("web", "/"); body != "next" {
			t.Fatalf("after the promotion: %q", body)
		}
	}
}

// TestCanaryFigures: each side's requests, 5xx and latencies are counted
// for the judge, and in liftoff_canary_requests_total.
func TestCanaryFigures(t *testing.T) {
	t.Parallel()
	h, _ := canaryHarness(t)
	bad := newApp(t, "bad")
	if err := h.p.Canary("web", bad.addr(), 50); err != nil {
		t.Fatal(err)
	}
	cur0, can0 := h.p.Figures("web")
	for range 100 { // 50 each, by the rolls
		h.get("web", "/")
	}
	h.get("web", "/missing") // a 404, not a 5xx; the 101st roll is 0: the canary

	cur, can := h.p.Figures("web")
	cur, can = cur.Sub(cur0), can.Sub(can0)
	if cur.Requests != 50 || can.Requests != 51 {
		t.Errorf("requests: current %d, canary %d; want 50 and 51", cur.Requests, can.Requests)
	}
	if cur.ServerError != 0 || can.ServerError != 0 || can.ErrorRate() != 0 {
		t.Errorf("5xx: current %d, canary %d", cur.ServerError, can.ServerError)
	}
	if q := can.Quantile(0.99); q <= 0 || q > LatencyBuckets[len(LatencyBuckets)-1] {
		t.Errorf("canary p99 %v", q)
	}
	// The canary's container gone: a client on its side gets 502s.
	bad.srv.Close()
	_, before := h.p.Figures("web")
	jar, _ := cookiejar.New(nil)
	onCanary := &http.Client{Transport: h.client.Transport, Jar: jar, Timeout: deadline}
	u, _ := http.NewRequest(http.MethodGet, h.url("web", "/"), nil)
	jar.SetCookies(u.URL, []*http.Cookie{{Name: CanaryCookie, Value: splitCookie(h, 0)}}) // 0 < 50: the canary's side
	for range 4 {
		res, err := onCanary.Get(h.url("web", "/"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadGateway {
			t.Fatalf("a closed canary: %d, want 502", res.StatusCode)
		}
	}
	_, after := h.p.Figures("web")
	w := after.Sub(before)
	if w.Requests != 4 || w.ServerError != 4 || w.ConnErrors != 4 || w.ErrorRate() != 1 {
		t.Errorf("a closed canary's window: %+v, rate %v", w, w.ErrorRate())
	}
	if n := testutil.ToFloat64(h.p.met.sides.WithLabelValues("web", "new", "5xx")); n != 4 {
		t.Errorf(`liftoff_canary_requests_total{side="new",code="5xx"} = %v, want 4`, n)
	}
	if n := testutil.ToFloat64(h.p.met.sides.WithLabelValues("web", "old", "2xx")); n != 50 {
		t.Errorf(`liftoff_canary_requests_total{side="old",code="2xx"} = %v, want 50`, n)
	}
}

func TestCanaryRefused(t *testing.T) {
	t.Parallel()
	h, old := canaryHarness(t)
	for _, tt := range []struct {
		deployment, upstream string
		weight               int
		want                 string
	}{
		{"web", "127.0.0.1:1", 101, "want 0 to 100"},
		{"web", "127.0.0.1:1", -1, "want 0 to 100"},
		{"web", old.addr(), 10, "already its upstream"},
		{"nope", "127.0.0.1:1", 10, "has no upstream"},
	} {
		if err := h.p.Canary(tt.deployment, tt.upstream, tt.weight); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Canary(%s, %s, %d): %v, want %q", tt.deployment, tt.upstream, tt.weight, err, tt.want)
		}
	}
	if _, body := h.get("web", "/"); body != "old" {
		t.Errorf("after refused canaries: %q", body)
	}
}

// splitCookie is the value of CanaryCookie for a client of web's split now
// that drew n.
func splitCookie(h *harness, n int) string {
	h.p.mu.Lock()
	s := h.p.sites["web"]
	h.p.mu.Unlock()
	return s.canary.Load().cookie(n)
}

// TestCanaryShareOfReturningClients: as the weight grows step by step, the
// share of the same clients (each keeping its cookie) on the canary grows
// with it, and no client goes back from the canary to the old side; a
// cookie that is not one of the split's is drawn for again.
func TestCanaryShareOfReturningClients(t *testing.T) {
	t.Parallel()
	h, _ := canaryHarness(t)
	canary := newApp(t, "new")
	clients := make([]*http.Client, 100)
	for i := range clients {
		jar, _ := cookiejar.New(nil)
		clients[i] = &http.Client{Transport: h.client.Transport, Jar: jar, Timeout: deadline}
	}
	onNew := make([]bool, len(clients))
	for _, w := range []int{5, 25, 50, 100} {
		if err := h.p.Canary("web", canary.addr(), w); err != nil {
			t.Fatal(err)
		}
		n := 0
		for i, c := range clients {
			res, err := c.Get(h.url("web", "/"))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			isNew := res.Header.Get("X-Upstream") == "new"
			if onNew[i] && !isNew {
				t.Errorf("weight %d: client %d went back from the canary to the old side", w, i)
			}
			onNew[i] = isNew
			if isNew {
				n++
			}
		}
		if n != w {
			t.Errorf("weight %d: %d of 100 returning clients on the canary, want %d", w, n, w)
		}
	}

	_, id, _ := strings.Cut(splitCookie(h, 0), ".")
	for _, v := range []string{"new." + id, "100." + id, "-1." + id, "07." + id, "1.other", "abc"} {
		req, _ := http.NewRequest(http.MethodGet, h.url("web", "/"), nil)
		req.AddCookie(&http.Cookie{Name: CanaryCookie, Value: v})
		res, err := h.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if !strings.HasPrefix(res.Header.Get("Set-Cookie"), CanaryCookie+"=") {
			t.Errorf("cookie %q: no new draw (Set-Cookie %q)", v, res.Header.Get("Set-Cookie"))
		}
	}
}

// TestCanaryCookieOfAnEarlierSplit: the cookie binds a client to its side
// of one split only. A client sent to the canary of an earlier release (or
// of a canary aborted since) is rolled for again at the next split, not
// sent at once to a new container that should get only weight percent of
// the clients.
func TestCanaryCookieOfAnEarlierSplit(t *testing.T) {
	t.Parallel()
	h, _ := canaryHarness(t)
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Transport: h.client.Transport, Jar: jar, Timeout: deadline}
	side := func() string {
		t.Helper()
		res, err := client.Get(h.url("web", "/"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.Header.Get("X-Upstream")
	}

	first := newApp(t, "first")
	if err := h.p.Canary("web", first.addr(), 100); err != nil {
		t.Fatal(err)
	}
	if got := side(); got != "first" {
		t.Fatalf("weight 100 sent the client to %s", got)
	}
	// That canary aborted; the next release's canary starts at 0%.
	if err := h.p.Canary("web", "", 0); err != nil {
		t.Fatal(err)
	}
	second := newApp(t, "second")
	if err := h.p.Canary("web", second.addr(), 0); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if got := side(); got != "old" {
			t.Fatalf("a client with the cookie of an earlier split went to %s at weight 0", got)
		}
	}
	if second.served.Load() != 0 {
		t.Errorf("the second canary served %d requests at weight 0", second.served.Load())
	}
}
