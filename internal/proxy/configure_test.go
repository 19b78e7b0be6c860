package proxy

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestConfigureAddRemove(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b := newApp(t, "a"), newApp(t, "b")
	ra, rb := Route{Deployment: "a", Listen: "127.0.0.1:0"}, Route{Deployment: "b", Listen: "127.0.0.1:0"}
	h.configure(ra)
	h.p.Switch("a", a.addr())
	addrA := h.p.Addr("a").String()

	h.configure(ra, rb)
	h.p.Switch("b", b.addr())
	if _, body := h.get("b", "/"); body != "b" {
		t.Fatalf("b answered %q", body)
	}
	if got := h.p.Addr("a").String(); got != addrA {
		t.Fatalf("adding b moved a from %s to %s", addrA, got)
	}
	if h.series("b") == 0 {
		t.Fatal("b has no series")
	}

	addrB := h.p.Addr("b").String()
	h.configure(ra)
	if h.p.Addr("b") != nil {
		t.Error("b still has an address")
	}
	if !refused(addrB) {
		t.Errorf("%s still accepts after b's route was removed", addrB)
	}
	if n := h.series("b"); n != 0 {
		t.Errorf("b still has %d series", n)
	}
	if u := h.p.Upstream("b"); u != "" {
		t.Errorf("b's upstream %q survived its route", u)
	}
	if _, body := h.get("a", "/"); body != "a" {
		t.Errorf("a answered %q", body)
	}

	h.configure()
	if h.p.Addr("a") != nil || !refused(addrA) {
		t.Error("a still routed after Configure with no routes")
	}
}

// A removed route lets its requests in flight finish; those waiting for an
// upstream are answered at once.
func TestConfigureRemoveGracefully(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	waiting := make(chan string, 8)
	h.p.onWait = func(d string) { waiting <- d }
	slow := newBlocking(t, false)
	h.configure(web(), Route{Deployment: "idle", Listen: "127.0.0.1:0", WaitTimeout: deadline})
	h.p.Switch("web", slow.addr())

	inflight := h.goGet("web", "/")
	recv(t, slow.entered, "the request upstream")
	waiter := h.goGet("idle", "/")
	recv(t, waiting, "a request to wait")

	h.configure()
	if res := recv(t, waiter, "the waiting request"); res.err != nil || res.res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("waiting request: %+v", res)
	}
	slow.free()
	if res := recv(t, inflight, "the request in flight"); res.err != nil || res.res.StatusCode != http.StatusOK || res.body != "done\n" {
		t.Fatalf("request in flight: %+v", res)
	}
}

func TestConfigureChangeListen(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := newApp(t, "a")
	h.configure(web())
	h.p.Switch("web", a.addr())
	old := h.p.Addr("web").String()

	r := web()
	r.Listen = freeAddr(t)
	h.configure(r)
	if got := h.p.Addr("web").String(); got != r.Listen {
		t.Fatalf("web listens on %s, want %s", got, r.Listen)
	}
	if !refused(old) {
		t.Errorf("%s still accepts", old)
	}
	if _, body := h.get("web", "/"); body != "a" {
		t.Errorf("after the move, web answered %q: the upstream did not survive", body)
	}
}

// All or nothing: a listener that cannot be opened leaves every route as it
// was, and closes the listeners opened before it.
func TestConfigureFailureChangesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	a := newApp(t, "a")
	h.configure(web())
	h.p.Switch("web", a.addr())
	addr := h.p.Addr("web").String()

	free := freeAddrs(t, 2)
	moved := web()
	moved.Listen = free[0]
	moved.MaxBody = 1
	added := Route{Deployment: "added", Listen: free[1]}
	clash := Route{Deployment: "clash", Listen: busy.Addr().String()}
	err = h.p.Configure([]Route{moved, added, clash})
	if err == nil {
		t.Fatal("Configure with an address in use succeeded")
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "clash") || !strings.Contains(err.Error(), clash.Listen) {
		t.Errorf("error %q should name clash and %s", err, clash.Listen)
	}
	if got := h.p.Addr("web"); got == nil || got.String() != addr {
		t.Errorf("web moved to %v", got)
	}
	if h.p.Addr("added") != nil || h.p.Addr("clash") != nil {
		t.Error("a route of the failed Configure exists")
	}
	req, _ := http.NewRequest(http.MethodPost, h.url("web", "/"), strings.NewReader("hello"))
	if res, body := h.do(req); res.StatusCode != http.StatusOK || body != "hello" {
		t.Errorf("web's settings changed: %d %q", res.StatusCode, body)
	}
	for _, l := range []string{moved.Listen, added.Listen} {
		ln, err := net.Listen("tcp", l)
		if err != nil {
			t.Errorf("the failed Configure left %s open: %v", l, err)
			continue
		}
		ln.Close()
	}
}

// An address keeps its listener when it passes to another deployment.
func TestConfigureHandOver(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a, b := newApp(t, "a"), newApp(t, "b")
	free := freeAddrs(t, 2)
	l1, l2 := free[0], free[1]
	h.p.Switch("a", a.addr()) // before its route: kept for it
	h.p.Switch("b", b.addr())
	h.configure(Route{Deployment: "a", Listen: l1}, Route{Deployment: "b", Listen: l2})
	if _, body := h.get("a", "/"); body != "a" {
		t.Fatalf("a answered %q", body)
	}

	// Swapped: neither address could be opened while the other holds it.
	h.configure(Route{Deployment: "a", Listen: l2}, Route{Deployment: "b", Listen: l1})
	for name, want := range map[string]string{"a": l2, "b": l1} {
		if got := h.p.Addr(name).String(); got != want {
			t.Errorf("%s on %s, want %s", name, got, want)
		}
		if _, body := h.get(name, "/"); body != name {
			t.Errorf("%s answered %q", name, body)
		}
	}

	// Renamed: c takes b's address.
	c := newApp(t, "c")
	h.p.Switch("c", c.addr())
	h.configure(Route{Deployment: "a", Listen: l2}, Route{Deployment: "c", Listen: l1})
	if _, body := h.get("c", "/"); body != "c" {
		t.Errorf("c answered %q", body)
	}
	if h.p.Addr("b") != nil {
		t.Error("b still routed")
	}
}

func TestConfigureInvalid(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.configure(web())
	addr := h.p.Addr("web").String()
	for _, tt := range []struct {
		name   string
		routes []Route
		want   string
	}{
		{"no deployment", []Route{{Listen: "127.0.0.1:0"}}, "no deployment"},
		{"no listen", []Route{{Deployment: "x"}}, "x: no listen address"},
		{"twice", []Route{web(), {Deployment: "web", Listen: "127.0.0.1:1"}}, "two routes"},
		{"same address", []Route{{Deployment: "web", Listen: "127.0.0.1:1"}, {Deployment: "x", Listen: "127.0.0.1:1"}}, "already the address of web"},
		{"negative body", []Route{{Deployment: "x", Listen: "127.0.0.1:0", MaxBody: -1}}, "negative"},
	} {
		err := h.p.Configure(tt.routes)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, err, tt.want)
		}
	}
	if got := h.p.Addr("web"); got == nil || got.String() != addr {
		t.Errorf("an invalid Configure changed web: %v", got)
	}
}

func TestConfigureDefaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.configure(web())
	h.p.mu.Lock()
	r := *h.p.sites["web"].route.Load()
	h.p.mu.Unlock()
	if r.DrainTimeout != 30*time.Second || r.WaitTimeout != 30*time.Second || r.MaxBody != 0 || r.TrustForwarded {
		t.Errorf("defaults: %+v", r)
	}
}

func TestSwitch(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if prev := h.p.Switch("web", "127.0.0.1:1"); prev != "" {
		t.Errorf("first Switch returned %q", prev)
	}
	if prev := h.p.Switch("web", "127.0.0.1:1"); prev != "127.0.0.1:1" {
		t.Errorf("same Switch returned %q", prev)
	}
	if prev := h.p.Switch("web", "127.0.0.1:2"); prev != "127.0.0.1:1" {
		t.Errorf("Switch returned %q", prev)
	}
	h.configure(web())
	if u := h.p.Upstream("web"); u != "127.0.0.1:2" {
		t.Errorf("Upstream after Configure = %q", u)
	}
	h.p.Switch("unrouted", "127.0.0.1:3")
	h.configure(web())
	if u := h.p.Upstream("unrouted"); u != "" {
		t.Errorf("an unrouted deployment kept %q past Configure", u)
	}
	if u := h.p.Upstream("nope"); u != "" {
		t.Errorf("Upstream of an unknown deployment = %q", u)
	}
}
