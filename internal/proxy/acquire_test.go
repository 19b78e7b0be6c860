package proxy

import (
	"context"
	"net/http"
	"testing"
)

// A request that read the old upstream just before Switch, but counted
// itself only after Drain found nothing in flight, must not go there: it
// goes to the new one.
func TestAcquireRacesSwitch(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	old, fresh := newApp(t, "old"), newApp(t, "fresh")
	read := make(chan struct{})
	resume := make(chan struct{})
	first := true
	h.p.onAcquire = func() { // only the request's goroutine calls it
		if first {
			first = false
			close(read)
			<-resume
		}
	}
	h.configure(web())
	h.p.Switch("web", old.addr())

	got := h.goGet("web", "/")
	recv(t, read, "the request to read the upstream")
	h.p.Switch("web", fresh.addr())
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	if err := h.p.Drain(ctx, "web", old.addr()); err != nil {
		t.Fatal(err)
	}
	close(resume)
	res := recv(t, got, "the request")
	if res.err != nil || res.res.StatusCode != http.StatusOK || res.body != "fresh" {
		t.Fatalf("got %+v, want 200 from fresh", res)
	}
	if n := old.served.Load(); n != 0 {
		t.Errorf("old served %d requests after it was drained", n)
	}
}
