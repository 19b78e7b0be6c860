package webhooks

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// logLines parses the log lines of h written since from (a length of
// h.logs).
func logLines(t *testing.T, h *harness, from int) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()[from:]), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		lines = append(lines, m)
	}
	return lines
}

// TestHookLogsOneLine: a request served by the hook handler, whatever its
// fate, is logged once, by its "webhook" line; the access log leaves it out.
// Other requests, and a hook that panicked, keep their access line.
func TestHookLogsOneLine(t *testing.T) {
	push := fixture(t, "push.json")
	tests := []struct {
		name   string
		edit   func(*Options)
		before func(*harness) // sends what must come first, not logged
		method string
		target string
		body   string
		status int
		// The messages logged, in order, and the level of the first.
		messages []string
		level    string
	}{
		{name: "accepted", body: push, status: 202, messages: []string{"webhook"}, level: "info"},
		{name: "ignored", body: strings.Replace(push, `"tag": "staging"`, `"tag": "other"`, 1), status: 202, messages: []string{"webhook"}, level: "info"},
		{name: "trailing slash", target: "/hooks/dockerhub/" + testToken + "/", body: push, status: 202, messages: []string{"webhook"}, level: "info"},
		{name: "invalid", body: `{"push_data": 1}`, status: 400, messages: []string{"webhook"}, level: "warn"},
		{name: "wrong token", target: "/hooks/dockerhub/tok-wrong", body: push, status: 404, messages: []string{"webhook"}, level: "warn"},
		{name: "unknown source", target: "/hooks/quay/" + testToken, body: push, status: 404, messages: []string{"webhook"}, level: "warn"},
		{name: "too large", edit: func(o *Options) { o.MaxBody = 64 }, body: push, status: 413, messages: []string{"webhook"}, level: "warn"},
		{name: "draining", before: func(h *harness) { h.hh.SetDraining(true) }, body: push, status: 503, messages: []string{"webhook"}, level: "warn"},
		{name: "busy", before: func(h *harness) {
			for range cap(h.hh.hookSem) {
				h.hh.hookSem <- struct{}{}
			}
		}, body: push, status: 503, messages: []string{"webhook"}, level: "warn"},
		{name: "rate limited", edit: func(o *Options) { o.RateLimit = 1 }, before: func(h *harness) { h.post(push) },
			body: push, status: 429, messages: []string{"webhook"}, level: "debug"},
		{name: "not recorded", before: func(h *harness) { h.dep.fail = errors.New("disk full") }, body: push, status: 503,
			messages: []string{"webhook: the push could not be recorded; answered 503 so that the sender retries", "webhook"}, level: "error"},
		{name: "panic", before: func(h *harness) {
			h.cat.MatchFn = func(string, string) deployments.MatchResult { panic("boom") }
		}, body: push, status: 500, messages: []string{"http: handler panicked", "http request"}, level: "error"},
		{name: "wrong method", method: http.MethodGet, status: 405, messages: []string{"http request"}, level: "info"},
		{name: "unmatched path", target: "/hooks/dockerhub/" + testToken + "/extra", body: push, status: 404, messages: []string{"http request"}, level: "info"},
		{name: "healthz", method: http.MethodGet, target: "/healthz", status: 200, messages: []string{"http request"}, level: "debug"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.edit)
			if tt.before != nil {
				tt.before(h)
			}
			from := len(h.logs.String())
			method, target := cmp.Or(tt.method, http.MethodPost), cmp.Or(tt.target, "/hooks/dockerhub/"+testToken)
			w := h.do(method, target, strings.NewReader(tt.body))
			if w.Code != tt.status {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tt.status)
			}
			lines := logLines(t, h, from)
			var messages []string
			for _, l := range lines {
				messages = append(messages, l["message"].(string))
			}
			if !reflect.DeepEqual(messages, tt.messages) {
				t.Fatalf("logged %q, want %q", messages, tt.messages)
			}
			if got := lines[0]["level"]; got != tt.level {
				t.Errorf("level %v, want %s", got, tt.level)
			}
			last := lines[len(lines)-1]
			if last["status"] != float64(tt.status) || last["remote"] != "192.0.2.1:1234" || last["duration"] == nil {
				t.Errorf("last line %v: want status %d, remote and duration", last, tt.status)
			}
			if route, _ := last["route"].(string); strings.Contains(route, testToken) || route == "" {
				t.Errorf("route %q", route)
			}
			if last["message"] == "webhook" && last["outcome"] == nil {
				t.Errorf("webhook line without an outcome: %v", last)
			}
		})
	}
}
