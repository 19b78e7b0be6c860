package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// A listener is an open address: its server, and the upgraded
// connections it tracks so that a shutdown can wait for them or cut them.

// retire stops l accepting now and lets its requests finish in the
// background, for the DrainTimeout of its last route at most.
func (p *Proxy) retire(l *listener) {
	l.closing.Store(true)
	l.ln.Close()
	grace := DefaultDrainTimeout
	if s := l.site.Load(); s != nil {
		grace = s.route.Load().DrainTimeout
	}
	p.retired.Add(1)
	go func() {
		defer p.retired.Done()
		ctx, cancel := context.WithTimeout(p.base, grace)
		defer cancel()
		if err := l.shutdown(ctx); err != nil {
			p.log.Warn().Str("listen", l.addr).Err(err).Msg("proxy: removed route cut its requests in flight")
		}
	}()
}

// listener is an open address and its server; which site it serves can
// change (Configure hands it over).
type listener struct {
	addr    string // as configured
	kind    int    // what it serves: one route, the front door, or its redirect
	p       *Proxy
	ln      net.Listener
	srv     *http.Server
	site    atomic.Pointer[site]
	closing atomic.Bool
	served  chan struct{} // closed when Serve has returned

	mu       sync.Mutex // guards what follows
	upgraded map[net.Conn]struct{}
	quiet    chan struct{} // closed when upgraded empties, if someone waits
}

// Kinds of listener.
const (
	kindRoute = iota // one route's own Listen
	kindFront        // the front door's Listen, routed by Host
	kindPlain        // the front door's HTTPListen: ACME and redirects
)

func (p *Proxy) newListener(addr string, ln net.Listener, kind int, tc *tls.Config) *listener {
	l := &listener{addr: addr, kind: kind, p: p, ln: ln, served: make(chan struct{}), upgraded: map[net.Conn]struct{}{}}
	var protos http.Protocols
	protos.SetHTTP1(true)
	if tc != nil {
		protos.SetHTTP2(true)
	}
	l.srv = &http.Server{
		Handler:           l,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          p.srvLog,
		Protocols:         &protos,
		TLSConfig:         tc,
	}
	return l
}

func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch l.kind {
	case kindFront:
		l.p.serveFront(l, w, r)
	case kindPlain:
		l.p.servePlain(w, r)
	default:
		l.site.Load().serve(l, w, r)
	}
}

func (l *listener) start(p *Proxy) {
	go func() {
		defer close(l.served)
		var err error
		if l.srv.TLSConfig != nil {
			err = l.srv.ServeTLS(l.ln, "", "")
		} else {
			err = l.srv.Serve(l.ln)
		}
		if !errors.Is(err, http.ErrServerClosed) && !l.closing.Load() {
			p.log.Error().Err(err).Str("listen", l.addr).Msg("proxy: listener failed")
		}
	}()
}

// shutdown closes l gracefully: it waits for the requests in flight, then
// for the upgraded connections, until ctx ends, when it cuts them all.
func (l *listener) shutdown(ctx context.Context) error {
	l.ln.Close() // Shutdown does not, when Serve has not begun yet
	var err error
	if l.srv.Shutdown(ctx) != nil { // ctx ended, or the listener was closed above
		err = ctx.Err()
	}
	if err == nil {
		err = l.waitUpgraded(ctx)
	}
	if err != nil {
		l.srv.Close()
		l.cutUpgraded()
	}
	<-l.served
	return err
}

func (l *listener) track(c net.Conn) {
	l.mu.Lock()
	l.upgraded[c] = struct{}{}
	l.mu.Unlock()
}

func (l *listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.upgraded, c)
	if len(l.upgraded) == 0 && l.quiet != nil {
		close(l.quiet)
		l.quiet = nil
	}
	l.mu.Unlock()
}

func (l *listener) waitUpgraded(ctx context.Context) error {
	for {
		l.mu.Lock()
		if len(l.upgraded) == 0 {
			l.mu.Unlock()
			return nil
		}
		if l.quiet == nil {
			l.quiet = make(chan struct{})
		}
		quiet := l.quiet
		l.mu.Unlock()
		select {
		case <-quiet:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (l *listener) cutUpgraded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.upgraded {
		c.Close()
	}
}

// logWriter turns the lines of a standard logger into zerolog events.
type logWriter struct {
	log   zerolog.Logger
	level zerolog.Level
}

func (w logWriter) Write(b []byte) (int, error) {
	w.log.WithLevel(w.level).Msg(strings.TrimSpace(string(b)))
	return len(b), nil
}

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
