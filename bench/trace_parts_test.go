package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// TestTraceParts checks how BenchmarkStopFirstTrace splits a swap into
// engine calls and gaps, and tells it; it needs no Docker engine.
func TestTraceParts(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }
	call := func(method, path string, from, to float64) engineCall {
		return engineCall{method: method, path: path, status: 200, start: at(from), end: at(to)}
	}
	s := traceSwap{
		mode: "liftoff", i: 1, t0: t0, served: at(1000), end: at(1200), version: "v1", names: []string{"app"},
		calls: []engineCall{
			call("GET", "/containers/app/json", 5, 6),
			call("POST", "/images/create", 10, 260),
			call("POST", "/containers/old/rename", 270, 275),
			call("POST", "/containers/create", 276, 350),
			call("POST", "/containers/old/stop", 352, 600),
			call("POST", "/containers/new/start", 601, 990),
			call("DELETE", "/containers/old", 1100, 1150), // after the first answer: not counted
		},
		events: []testenv.Event{
			{Time: at(360), Type: "container", Action: "kill", Name: "app.liftoff-prev"},
			{Time: at(400), Type: "container", Action: "die", Name: "app.liftoff-prev"},
			{Time: at(598), Type: "container", Action: "stop", Name: "app.liftoff-prev"},
			{Time: at(985), Type: "container", Action: "start", Name: "app"},
		},
		polls: []poll{
			{sent: at(0), at: at(1), ok: true, version: "v0"},
			{sent: at(20), at: at(21), ok: true, version: "v0"},
			{sent: at(420), at: at(421), reason: "refused"},
			{sent: at(980), at: at(1000), ok: true, version: "v1"},
		},
	}
	got := s.parts()
	want := map[string]time.Duration{
		"to-pull": 10 * time.Millisecond, "pull": 250 * time.Millisecond, "pull-to-stop": 92 * time.Millisecond,
		"rename": 5 * time.Millisecond, "create": 74 * time.Millisecond, "stop": 248 * time.Millisecond,
		"kill-to-die": 40 * time.Millisecond, "die-to-stop": 198 * time.Millisecond, "stop-to-start": time.Millisecond,
		"start": 389 * time.Millisecond, "start-event-to-serving": 15 * time.Millisecond, "start-call-to-serving": 10 * time.Millisecond,
		"kill-to-serving": 640 * time.Millisecond,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["rm"]; ok {
		t.Errorf("rm counted, but it came after the first answer: %v", got["rm"])
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected part %s = %v", k, got[k])
		}
	}

	if n := s.failed(); n != 1 {
		t.Errorf("failed = %d, want 1", n)
	}

	text := s.trace()
	for _, line := range []string{
		"call  POST /containers/old/stop", "event kill",
		"client 2 × ok old, sent 0.0–20.0", "client 1 × refused, sent 420.0–420.0", "client 1 × ok new, sent 980.0–980.0, answered 1000.0–1000.0",
		"FIRST ANSWER OF THE NEW VERSION",
	} {
		if !strings.Contains(text, line) {
			t.Errorf("trace lacks %q:\n%s", line, text)
		}
	}
	if strings.Index(text, "event kill") > strings.Index(text, "client 1 × refused") {
		t.Errorf("trace not in time order:\n%s", text)
	}
}
