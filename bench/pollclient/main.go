// Command pollclient asks the test app for its version at a fixed interval
// and prints one line per request, so that a benchmark can see when a
// deploy made the service answer with the new version and for how long it
// answered nothing.
//
// The benchmarks run it twice over: on the host against a published port,
// and inside a container on the app's network against a network alias,
// where only Docker's DNS knows which containers are behind the name. The
// same code in both places keeps the two measurements comparable.
//
// Every line is
//
//	<unix nanoseconds when the answer came> ok <version> <request's duration, µs>
//	<unix nanoseconds when the request failed> err <reason> <request's duration, µs>
//
// A request starts every interval (or -rate times a second) whether or
// not the earlier ones have finished. By default each opens a new
// connection (no keep-alive) and, through an alias, resolves the name
// again: a client that holds a connection to the old container would
// measure its own connection, not the swap. With -keepalive requests reuse
// idle connections, as a browser or a pooled HTTP client does; what a swap
// does to those connections is then part of what is measured.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8000/", "URL of the test app")
	interval := flag.Duration("interval", 10*time.Millisecond, "time between the starts of two requests")
	rate := flag.Int("rate", 0, "requests started per second (overrides -interval)")
	keepAlive := flag.Bool("keepalive", false, "reuse connections (default: a new connection per request)")
	timeout := flag.Duration("timeout", 2*time.Second, "a request without an answer by then failed")
	flag.Parse()
	if *rate > 0 {
		*interval = time.Second / time.Duration(*rate)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	tr := &http.Transport{DisableKeepAlives: true}
	if *keepAlive {
		// As many idle connections as requests may be in flight: at a
		// high rate a smaller pool would open new ones anyway.
		tr = &http.Transport{MaxIdleConns: 0, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute}
	}
	c := &http.Client{Timeout: *timeout, Transport: tr}
	var mu sync.Mutex // out
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for ctx.Err() == nil {
		// Each request on its own: one that hangs (a SYN dropped while
		// the port is being set up waits a whole second for the kernel to
		// send it again) must not hide that the next ones are answered.
		wg.Go(func() {
			start := time.Now()
			version, err := get(ctx, c, *url)
			now := time.Now()
			if err != nil && ctx.Err() != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			took := now.Sub(start).Microseconds()
			if err != nil {
				fmt.Fprintf(out, "%d err %s %d\n", now.UnixNano(), reason(err), took)
			} else {
				fmt.Fprintf(out, "%d ok %s %d\n", now.UnixNano(), version, took)
			}
			// The reader acts on each line as it comes.
			if err := out.Flush(); err != nil {
				os.Exit(1)
			}
		})
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	wg.Wait()
}

func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status-%d", resp.StatusCode)
	}
	var a struct {
		Version string `json:"version"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return "", fmt.Errorf("body: %w", err)
	}
	if a.Version == "" || strings.ContainsAny(a.Version, " \n") {
		return "", fmt.Errorf("bad-version")
	}
	return a.Version, nil
}

// reason names the failure in one word, so that lines stay parseable.
func reason(err error) string {
	var dns *net.DNSError
	var ne net.Error
	s := err.Error()
	switch {
	case errors.As(err, &dns):
		return "dns"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case strings.Contains(s, "connection refused"):
		return "refused"
	case strings.Contains(s, "connection reset"):
		return "reset"
	case strings.Contains(s, "EOF"):
		return "eof"
	case strings.Contains(s, "server closed idle connection"):
		// Go's name for a connection closed before any answer.
		return "closed"
	case strings.Contains(s, "no route to host"), strings.Contains(s, "host is unreachable"):
		return "unreachable"
	case strings.HasPrefix(s, "status-"), s == "bad-version":
		return s
	}
	// Unforeseen: keep the end of the message, in one word.
	if len(s) > 60 {
		s = s[len(s)-60:]
	}
	return "other:" + strings.Join(strings.Fields(s), "_")
}
