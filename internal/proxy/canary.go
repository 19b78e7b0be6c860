package proxy

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// A canary is a second upstream of a deployment that gets a share of its
// requests, beside the current one, so that a new container can be judged
// by its own traffic before it gets all of it. Each client draws a number
// once per split and keeps it (a cookie): it is on the canary's side while
// that number is below the weight, so that as the weight grows from step
// to step the share of returning clients grows with it, and no client
// flips back from the new version to the old one while the canary goes
// on. The proxy only splits and measures; who decides the weight, and when
// to promote (Switch to the canary) or abort (end the split, Drain the
// canary), is the caller's business.
//
// The canary's backend is counted and drained like any other: a request
// counts itself on it and checks that the split is still the same, so that
// once Canary has ended the split, every request either is counted there
// (and Drain waits for it) or goes to the current upstream.

// CanaryCookie is the cookie that keeps a client's draw for a split: a
// number from 0 to 99, ".", then the split's id. The id binds it to that
// split: a client that drew low for the canary of an earlier release, or of
// a canary aborted since, draws again at the next split rather than being
// sent at once to a container that should get only a share of the clients.
const CanaryCookie = "liftoff_canary"

// canaryCookieAge is how long a client keeps its side: longer than a
// canary's steps, short enough not to outlive the next release by much.
const canaryCookieAge = 24 * time.Hour

type canary struct {
	b      *backend
	weight int    // percent of the clients, 0 to 100: those whose draw is below it
	id     string // the split's, in its cookies; kept while only the weight changes
}

// cookie is the value of CanaryCookie for a client of c that drew n.
func (c *canary) cookie(n int) string { return strconv.Itoa(n) + "." + c.id }

// draw returns the number v (a CanaryCookie's value) holds for c, false if
// v is not one of c's.
func (c *canary) draw(v string) (int, bool) {
	ns, id, ok := strings.Cut(v, ".")
	if !ok || id != c.id {
		return 0, false
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n < 0 || n > 99 || strconv.Itoa(n) != ns {
		return 0, false
	}
	return n, true
}

// Canary sends weight percent (0 to 100) of the deployment's clients to
// upstream beside its current upstream, each client sticking to its side;
// upstream "" ends the split (weight is then ignored). Calling it again
// with the same upstream changes the weight, keeping each client's draw:
// raising it moves clients from the old side to the new one only. It returns an error for a weight out of range, an upstream that is
// already the current one, or a deployment without a current upstream.
func (p *Proxy) Canary(deployment, upstream string, weight int) error {
	if upstream != "" && (weight < 0 || weight > 100) {
		return fmt.Errorf("canary of %s: weight %d: want 0 to 100", deployment, weight)
	}
	p.mu.Lock()
	s := p.sites[deployment]
	p.mu.Unlock()
	if s == nil {
		if upstream == "" {
			return nil
		}
		return fmt.Errorf("canary of %s: the deployment has no upstream", deployment)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if upstream == "" {
		s.canary.Store(nil)
		if s.met != nil {
			s.met.weight.Set(0)
		}
		return nil
	}
	cur := s.cur.Load()
	switch {
	case cur == nil:
		return fmt.Errorf("canary of %s: the deployment has no upstream", deployment)
	case cur.addr == upstream:
		return fmt.Errorf("canary of %s: %s is already its upstream", deployment, upstream)
	}
	b := s.backends[upstream]
	if b == nil {
		b = s.p.newBackend(s, upstream)
		s.backends[upstream] = b
	}
	id := strconv.FormatUint(rand.Uint64(), 36)
	if prev := s.canary.Load(); prev != nil && prev.b == b {
		id = prev.id
	}
	s.canary.Store(&canary{b: b, weight: weight, id: id})
	if s.met != nil { // nil until Configure routes the deployment
		s.met.weight.Set(float64(weight))
	}
	return nil
}

// pick counts the request on the backend it goes to: the canary's, if a
// split is on and the client's draw is below its weight, else the current
// one (nil if none). It sets the cookie that keeps a new client's draw.
func (s *site) pick(w http.ResponseWriter, r *http.Request) *backend {
	c := s.canary.Load()
	if c == nil {
		return s.acquire()
	}
	n, ok := 0, false
	if ck, err := r.Cookie(CanaryCookie); err == nil {
		n, ok = c.draw(ck.Value)
	}
	if !ok {
		n = s.p.roll()
		http.SetCookie(w, &http.Cookie{Name: CanaryCookie, Value: c.cookie(n), Path: "/", MaxAge: int(canaryCookieAge / time.Second),
			HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
	}
	if n < c.weight {
		c.b.inflight.Add(1)
		if s.canary.Load() == c {
			return c.b
		}
		c.b.release() // the split changed meanwhile: the current one
	}
	return s.acquire()
}

// Figures are what the proxy measured of one upstream since it became one:
// requests answered, those answered 5xx (the proxy's own 502 and 504
// included), those of them the container could not be reached or did not
// answer in time for, and the latency histogram.
type Figures struct {
	Requests    int64
	ServerError int64
	ConnErrors  int64
	// Buckets counts requests by latency: Buckets[i] those at most
	// LatencyBuckets[i], the last those above every bound.
	Buckets []int64
}

// LatencyBuckets are the upper bounds of Figures.Buckets.
var LatencyBuckets = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
	1600 * time.Millisecond, 3200 * time.Millisecond, 10 * time.Second,
}

// Sub returns what f counted since then (an earlier Figures of the same
// upstream): the figures of a window.
func (f Figures) Sub(then Figures) Figures {
	d := Figures{Requests: f.Requests - then.Requests, ServerError: f.ServerError - then.ServerError,
		ConnErrors: f.ConnErrors - then.ConnErrors, Buckets: slices.Clone(f.Buckets)}
	for i := range d.Buckets {
		if i < len(then.Buckets) {
			d.Buckets[i] -= then.Buckets[i]
		}
	}
	return d
}

// ErrorRate is the share of requests answered 5xx (ConnErrors included).
func (f Figures) ErrorRate() float64 {
	if f.Requests == 0 {
		return 0
	}
	return float64(f.ServerError) / float64(f.Requests)
}

// Quantile returns the upper bound of the latency bucket that holds the
// q-th quantile (0 < q ≤ 1), 0 without requests; above every bound, the
// largest bound.
func (f Figures) Quantile(q float64) time.Duration {
	var n int64
	for _, c := range f.Buckets {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n) + 0.999999)
	var seen int64
	for i, c := range f.Buckets {
		seen += c
		if seen >= rank && i < len(LatencyBuckets) {
			return LatencyBuckets[i]
		}
	}
	return LatencyBuckets[len(LatencyBuckets)-1]
}

// Figures returns the figures of the deployment's current upstream and of
// its canary (zero without a split).
func (p *Proxy) Figures(deployment string) (current, canary Figures) {
	p.mu.Lock()
	s := p.sites[deployment]
	p.mu.Unlock()
	if s == nil {
		return Figures{}, Figures{}
	}
	if b := s.cur.Load(); b != nil {
		current = b.figures()
	}
	if c := s.canary.Load(); c != nil {
		canary = c.b.figures()
	}
	return current, canary
}

// upstreamStats are one backend's figures, counted as its requests end.
type upstreamStats struct {
	requests, serverError, connErrors atomic.Int64
	buckets                           [14]atomic.Int64 // len(LatencyBuckets)+1
}

func (b *backend) observe(status int, took time.Duration, connErr bool) {
	st := &b.stats
	st.requests.Add(1)
	if status >= 500 {
		st.serverError.Add(1)
	}
	if connErr {
		st.connErrors.Add(1)
	}
	i, _ := slices.BinarySearch(LatencyBuckets, took)
	st.buckets[i].Add(1)
}

func (b *backend) figures() Figures {
	st := &b.stats
	f := Figures{Requests: st.requests.Load(), ServerError: st.serverError.Load(), ConnErrors: st.connErrors.Load(),
		Buckets: make([]int64, len(st.buckets))}
	for i := range st.buckets {
		f.Buckets[i] = st.buckets[i].Load()
	}
	return f
}

// roll returns a number in [0, 100): a new client's draw.
func (p *Proxy) roll() int {
	if p.rollFn != nil {
		return p.rollFn()
	}
	return rand.IntN(100)
}
