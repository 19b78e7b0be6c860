package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
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
	Trace    []string  `json:"trace"`    // resolving and dialing, with times
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
