package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// ClientResult is one request the test app's client mode made (see
// testapp's "client" command).
type ClientResult struct {
	Seq      int       `json:"seq"`
	Start    time.Time `json:"start"`
	Took     string    `json:"took"`
	Addr     string    `json:"addr"`    // the address that answered
	Version  string    `json:"version"` // what the app answered, "" on error
	Error    string    `json:"error"`
	Finished bool      `json:"finished"` // false while in flight
	Trace    []string  `json:"trace"`    // what happened, with times: see Events
}

// TraceEvent is one line of a ClientResult's Trace.
type TraceEvent struct {
	At   time.Time // when it happened
	What string    // "dns", "connect", "connected", "conn", "wrote" or "answer"
	// Args are the rest of the line: "[{IP } {IP }] ERR" for dns, the
	// address dialed for connect, the address and "<nil>" or the error for
	// connected, the local and remote addresses for conn, "<nil>" or the
	// error for wrote.
	Args string
}

// Events parses the trace: the client resolved the name (dns), dialed
// each address in turn (connect, connected), got a connection (conn),
// wrote the request (wrote) and got the first byte of the answer (answer).
func (r ClientResult) Events() []TraceEvent {
	var evs []TraceEvent
	for _, line := range r.Trace {
		i := strings.LastIndex(line, " +")
		if i < 0 {
			continue
		}
		d, err := time.ParseDuration(line[i+2:])
		if err != nil {
			continue
		}
		what, args, _ := strings.Cut(line[:i], " ")
		evs = append(evs, TraceEvent{At: r.Start.Add(d), What: what, Args: args})
	}
	return evs
}

// Resolved returns the addresses the name resolved to, and when; ok is
// false if the client got no answer.
func (r ClientResult) Resolved() (ips []string, at time.Time, ok bool) {
	for _, ev := range r.Events() {
		if ev.What == "dns" {
			for _, m := range dnsAddr.FindAllStringSubmatch(ev.Args, -1) {
				ips = append(ips, m[1])
			}
			return ips, ev.At, len(ips) > 0
		}
	}
	return nil, time.Time{}, false
}

var dnsAddr = regexp.MustCompile(`\{([0-9a-fA-F.:]+) [^}]*\}`)

// Dialed returns the last address (IP) the client dialed, when it began
// and whether the TCP handshake with it completed; ip is "" if the client
// dialed none.
func (r ClientResult) Dialed() (ip string, at time.Time, connected bool) {
	for _, ev := range r.Events() {
		addr, rest, _ := strings.Cut(ev.Args, " ")
		switch ev.What {
		case "connect":
			ip, at, connected = hostOf(addr), ev.At, false
		case "connected":
			connected = hostOf(addr) == ip && rest == "<nil>"
		}
	}
	return ip, at, connected
}

// Wrote tells whether the client had written the whole request.
func (r ClientResult) Wrote() bool {
	for _, ev := range r.Events() {
		if ev.What == "wrote" && ev.Args == "<nil>" {
			return true
		}
	}
	return false
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// Client is a test app running as a load client in a container.
type Client struct {
	e    *Eng
	Name string
	base string // http://IP:PORT of its results server
}

// StartClient runs the test app from image (already in the engine) as a
// load client in a container named name (from UniqueName, so that it is
// removed when the test ends) on network, GETting url every interval on a
// new connection each time, until Stop.
func (e *Eng) StartClient(t testing.TB, name, image, network, url string, interval time.Duration) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image: image,
			Cmd:   []string{"client"},
			Env: []string{
				"TESTAPP_CLIENT_URL=" + url,
				"TESTAPP_CLIENT_INTERVAL=" + interval.String(),
				"TESTAPP_CLIENT_TIMEOUT=2s",
			},
		},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(network)},
	})
	if err != nil {
		t.Fatalf("testenv: create client %s: %v", name, err)
	}
	if _, err := e.cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("testenv: start client %s: %v", name, err)
	}
	in, err := e.cli.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatalf("testenv: inspect client %s: %v", name, err)
	}
	var ip string
	if ns := in.Container.NetworkSettings; ns != nil {
		if ep := ns.Networks[network]; ep != nil && ep.IPAddress.IsValid() {
			ip = ep.IPAddress.String()
		}
	}
	if ip == "" {
		t.Fatalf("testenv: client %s has no address on %s", name, network)
	}
	return &Client{e: e, Name: name, base: "http://" + net.JoinHostPort(ip, strconv.Itoa(AppPort))}
}

// Results returns what the client recorded so far, retrying for a while
// as the client starts.
func (c *Client) Results(t testing.TB) []ClientResult {
	t.Helper()
	return c.call(t, http.MethodGet, "/results")
}

// Stop makes the client stop sending, waits for its requests in flight
// and returns every result.
func (c *Client) Stop(t testing.TB) []ClientResult {
	t.Helper()
	return c.call(t, http.MethodPost, "/stop")
}

func (c *Client) call(t testing.TB, method, path string) []ClientResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		rs, err := c.try(ctx, method, path)
		if err == nil {
			return rs
		}
		select {
		case <-ctx.Done():
			t.Fatalf("testenv: client %s: %s %s: %v", c.Name, method, path, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Client) try(ctx context.Context, method, path string) ([]ClientResult, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s", resp.Status)
	}
	var rs []ClientResult
	if err := json.NewDecoder(resp.Body).Decode(&rs); err != nil {
		return nil, err
	}
	return rs, nil
}
