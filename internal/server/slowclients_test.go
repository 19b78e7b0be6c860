package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokenCore is a part of testToken that no answer or log line may hold.
var tokenCore = strings.ToLower(testToken[8:28])

const hookPath = "/hooks/dockerhub/" + testToken

// deadlineListener hands out connections on which every read deadline
// the server sets comes scale times sooner, so that tests see ReadTimeout
// (30s) and ReadHeaderTimeout (5s) at work in a second; it records the
// deadlines as the server asked for them.
type deadlineListener struct {
	net.Listener
	scale int64

	mu        sync.Mutex
	deadlines []time.Duration
}

func (l *deadlineListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &deadlineConn{Conn: c, l: l}, nil
}

func (l *deadlineListener) asked() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]time.Duration(nil), l.deadlines...)
}

type deadlineConn struct {
	net.Conn
	l *deadlineListener
}

func (c *deadlineConn) scaled(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	d := time.Until(t)
	if d <= 0 { // net/http's way to interrupt a read: keep it
		return t
	}
	c.l.mu.Lock()
	c.l.deadlines = append(c.l.deadlines, d)
	c.l.mu.Unlock()
	return time.Now().Add(d / time.Duration(c.l.scale))
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error { return c.Conn.SetReadDeadline(c.scaled(t)) }
func (c *deadlineConn) SetDeadline(t time.Time) error     { return c.Conn.SetDeadline(c.scaled(t)) }

// TestHookSlowClients: a client that stalls in its headers, stalls in its
// body, or trickles its body a byte at a time is cut off by the server's
// own deadlines (ReadHeaderTimeout, ReadTimeout), which trickling does not
// extend. Nothing is queued.
func TestHookSlowClients(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.ShutdownTimeout = 5 * time.Second })
	goodBody := fixture(t, "push.json")
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const scale = 30
	ln := &deadlineListener{Listener: inner, scale: scale}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	head := "POST " + hookPath + " HTTP/1.1\r\nHost: liftoff\r\nContent-Type: application/json\r\n"
	tests := []struct {
		name    string
		send    string // then stall
		trickle bool   // then send a byte every 20ms
		limit   time.Duration
	}{
		{"stalls in its headers", head, false, 5 * time.Second},
		{"stalls in its body", head + "Content-Length: 4096\r\n\r\n" + goodBody[:20], false, 30 * time.Second},
		{"trickles its body", head + "Content-Length: 100000\r\n\r\n", true, 30 * time.Second},
		{"trickles its headers", "POST " + hookPath + " HTTP/1.1\r\n", true, 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if _, err := io.WriteString(conn, tc.send); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			if tc.trickle {
				go func() {
					for {
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Millisecond):
						}
						// X-A: ... keeps a header line going; a body takes any byte.
						if _, err := conn.Write([]byte("a")); err != nil {
							return
						}
					}
				}()
			}
			// The server, not this guard, must end the exchange: at 1/30
			// of its timeouts it does so within about a second.
			conn.SetReadDeadline(time.Now().Add(tc.limit/scale + 10*time.Second))
			got, err := io.ReadAll(conn)
			took := time.Since(start)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open after %v (the server's limit is %v, scaled %v)", took, tc.limit, tc.limit/scale)
			}
			if len(got) > 0 {
				resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
				if err != nil {
					t.Fatalf("answer %q: %v", got, err)
				}
				if resp.StatusCode < 400 || resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
					t.Errorf("answered %s, want a 4xx", resp.Status)
				}
				if strings.Contains(strings.ToLower(string(got)), tokenCore) {
					t.Errorf("the token is in the answer %q", got)
				}
			}
			if n := len(h.dep.requests()); n != 0 {
				t.Errorf("%d deploys queued", n)
			}
		})
	}

	// The server asked for no read deadline further off than its
	// ReadTimeout, so unscaled it cuts every slow client within 30s.
	asked := ln.asked()
	var sawHeader, sawBody bool
	for _, d := range asked {
		switch {
		case d > 30*time.Second+time.Second:
			t.Errorf("read deadline %v away: longer than ReadTimeout", d)
		case d <= 5*time.Second:
			sawHeader = true
		case d > 25*time.Second:
			sawBody = true
		}
	}
	if !sawHeader || !sawBody {
		t.Errorf("read deadlines %v: want ReadHeaderTimeout (≤5s) and ReadTimeout (≤30s)", asked)
	}
	if logs := h.logs.String(); strings.Contains(strings.ToLower(logs), tokenCore) {
		t.Errorf("the hook token is in the logs:\n%s", logs)
	}
}
