package proxy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

var (
	errNoUpstream = errors.New("no upstream in time")
	errGone       = errors.New("route removed")
)

// site is one deployment: its route's settings, its metrics, its upstreams.
type site struct {
	name  string
	p     *Proxy
	route atomic.Pointer[Route] // nil until routed
	met   *siteMetrics          // set by Configure before any request
	door  *listener             // guarded by p.mu
	cur   atomic.Pointer[backend]
	// canary, if set, takes a share of the requests (see Canary); its
	// backend is in backends too.
	canary atomic.Pointer[canary]

	mu       sync.Mutex          // guards what follows
	ready    chan struct{}       // closed while cur is set
	gone     chan struct{}       // closed when the route is removed
	backends map[string]*backend // the current one, and those with requests in flight
	open     bool                // ready is closed
	dropped  bool                // gone is closed
}

func newSite(p *Proxy, name string) *site {
	return &site{
		name:     name,
		p:        p,
		ready:    make(chan struct{}),
		gone:     make(chan struct{}),
		backends: map[string]*backend{},
	}
}

// set makes addr the current upstream, and returns the previous one.
func (s *site) set(addr string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := ""
	if b := s.cur.Load(); b != nil {
		prev = b.addr
	}
	if addr == prev {
		return prev
	}
	var b *backend
	if addr != "" {
		b = s.backends[addr]
		if b == nil {
			b = s.p.newBackend(s, addr)
			s.backends[addr] = b
		}
	}
	s.cur.Store(b)
	switch {
	case b != nil && !s.open:
		close(s.ready)
		s.open = true
	case b == nil && s.open:
		s.ready = make(chan struct{})
		s.open = false
	}
	// Forget the backends no longer current with nothing in flight: a
	// request that took one before the Store above finds it no longer
	// current and takes the new one.
	for a, x := range s.backends {
		if x != b && !s.isCanary(x) && x.inflight.Load() == 0 {
			delete(s.backends, a)
			x.tr.CloseIdleConnections()
		}
	}
	return prev
}

// drop makes the requests waiting for an upstream give up: the route is
// gone. Those in flight go on.
func (s *site) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dropped {
		close(s.gone)
		s.dropped = true
	}
	for _, b := range s.backends {
		b.tr.CloseIdleConnections()
	}
}

func (s *site) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.backends {
		b.tr.CloseIdleConnections()
	}
}

// acquire counts a request on the current backend and returns it, nil if
// there is none. Counting first and checking that the backend is still
// current after is what lets Drain trust the count once Switch returned.
func (s *site) acquire() *backend {
	for {
		b := s.cur.Load()
		if b == nil {
			return nil
		}
		if s.p.onAcquire != nil {
			s.p.onAcquire()
		}
		b.inflight.Add(1)
		if s.cur.Load() == b {
			return b
		}
		b.release()
	}
}

// await waits for an upstream, at most wait.
func (s *site) await(ctx context.Context, m *siteMetrics, wait time.Duration) (*backend, error) {
	m.waiting.Inc()
	defer m.waiting.Dec()
	if s.p.onWait != nil {
		s.p.onWait(s.name)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ready, gone := s.ready, s.gone
		s.mu.Unlock()
		if b := s.acquire(); b != nil {
			return b, nil
		}
		select {
		case <-ready:
		case <-gone:
			return nil, errGone
		case <-timer.C:
			return nil, errNoUpstream
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// isCanary tells whether b is the canary's backend.
func (s *site) isCanary(b *backend) bool {
	c := s.canary.Load()
	return c != nil && c.b == b
}
