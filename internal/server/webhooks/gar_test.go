package webhooks

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// Pub/Sub delivers a message again until it is acknowledged: a copy of
// a message answered 202 (its messageId) deploys nothing more; another
// message of the same push is a new delivery.
func TestGARRedelivery(t *testing.T) {
	t.Parallel()
	h := sendersHarness(t)
	body := payloadFixture(t, "gar", "insert_tagged.json")
	if res, b := h.send(sender{"gar", body, nil}); res.StatusCode != http.StatusAccepted {
		t.Fatalf("first delivery: %d %s", res.StatusCode, b)
	}
	res, b := h.send(sender{"gar", body, nil})
	if res.StatusCode != http.StatusOK || !strings.Contains(b, "redelivery") {
		t.Errorf("redelivery: %d %s, want 200 naming it a redelivery", res.StatusCode, b)
	}
	if n := len(h.dep.requests()); n != 1 {
		t.Errorf("%d deploys queued for a message and its copy, want 1", n)
	}
	other := strings.ReplaceAll(body, "11913873829364722", "11913873829364799")
	if res, b := h.send(sender{"gar", other, nil}); res.StatusCode != http.StatusAccepted {
		t.Errorf("another message: %d %s", res.StatusCode, b)
	}
	if n := len(h.dep.requests()); n != 2 {
		t.Errorf("%d deploys queued after another message, want 2", n)
	}
}

// A DELETE and an untagged push are answered 202, counted as ignored (the
// reason is in the log and the history), so that Pub/Sub does not deliver
// them again, and deploy nothing.
func TestGARSkipsDeletesAndUntagged(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"delete.json", "insert_untagged.json"} {
		h := sendersHarness(t)
		res, b := h.send(sender{"gar", payloadFixture(t, "gar", f), nil})
		if res.StatusCode != http.StatusAccepted || !strings.Contains(b, `"accepted":0,`) || !strings.Contains(b, `"ignored":1`) {
			t.Errorf("%s: %d %s, want 202, one ignored", f, res.StatusCode, b)
		}
		if n := len(h.dep.requests()); n != 0 {
			t.Errorf("%s: %d deploys queued", f, n)
		}
	}
}

// A wrong token is the 404 of an unknown source; a malformed message is
// 400 naming the field; neither deploys anything.
func TestGARRefused(t *testing.T) {
	t.Parallel()
	h := sendersHarness(t)
	body := payloadFixture(t, "gar", "insert_tagged.json")
	for _, path := range []string{"/hooks/gar/" + testToken + "x", "/hooks/gar/" + strings.ToUpper(testToken), "/hooks/gar/"} {
		r, _ := http.NewRequest(http.MethodPost, path, strings.NewReader(body))
		if w := h.serve(r); w.Code != http.StatusNotFound || w.Body.String() != httperr.NotFoundBody {
			t.Errorf("POST %s: %d %q, want the 404 of an unknown source", path, w.Code, w.Body)
		}
	}
	deep := base64.StdEncoding.EncodeToString([]byte(strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000)))
	for name, tc := range map[string]struct{ body, want string }{
		"data not base64":       {strings.Replace(body, `"data": "`, `"data": "!`, 1), "message.data: not base64"},
		"data nested deep":      {`{"message": {"data": "` + deep + `", "messageId": "1"}}`, "message.data.action: missing"},
		"no message":            {`{"subscription": "projects/p/subscriptions/s"}`, "message: missing"},
		"payload unwrapping on": {`{"action": "INSERT", "tag": "europe-west1-docker.pkg.dev/acme-prod/apps/web:v42"}`, "payload unwrapping"},
	} {
		res, b := h.send(sender{"gar", tc.body, nil})
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(b, tc.want) {
			t.Errorf("%s: %d %s, want 400 with %q", name, res.StatusCode, b, tc.want)
		}
	}
	if n := len(h.dep.requests()); n != 0 {
		t.Errorf("%d deploys queued", n)
	}
}
