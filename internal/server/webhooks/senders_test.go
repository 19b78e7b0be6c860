package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// The hooks and deployments of every sender's fixtures (internal/payload's
// testdata), loaded as liftoff loads a config file: the handler checks
// secrets and auth headers of a real catalogue.
const (
	sendersSecret = "HOOKSECRET-0123456789abcdef0123"
	sendersAuth   = "Bearer AUTHSECRET-0123456789abcdef"
)

var sendersConfig = `hooks:
  - {source: ghcr, token: ` + testToken + `, secret: ` + sendersSecret + `}
  - {source: generic, token: ` + testToken + `, secret: ` + sendersSecret + `}
  - {source: distribution, token: ` + testToken + `, auth_header: "` + sendersAuth + `"}
  - {source: harbor, token: ` + testToken + `, auth_header: "` + sendersAuth + `"}
  - {source: ecr, token: ` + testToken + `}
  - {source: quay, token: ` + testToken + `}
  - {source: gar, token: ` + testToken + `}
deployments:
  - {name: gh-web, image: ghcr.io/acme-corp/web, tags: ["semver:^1"]}
  - {name: reg-web, image: registry.example.com/acme/web, tags: ["semver:^3"]}
  - {name: harbor-web, image: harbor.example.com/library/web, tags: ["glob:*"]}
  - {name: quay-api, image: quay.io/acme/api, tags: [latest, "semver:^1"]}
  - {name: ecr-web, image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web, tags: ["regexp:^v[0-9]+$"]}
  - {name: generic-api, image: registry.example.com:5000/team/api, tags: ["semver:^2"]}
  - {name: gar-web, image: europe-west1-docker.pkg.dev/acme-prod/apps/web, tags: ["glob:v*"]}
`

// sendersHarness serves the hooks of sendersConfig.
func sendersHarness(t *testing.T) *harness {
	t.Helper()
	cfg, err := deployments.Parse([]byte(sendersConfig), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, func(o *Options) { o.Catalogue = func() Catalogue { return cfg } })
}

// sender is one request as a registry sends it.
type sender struct {
	source string
	body   string
	header http.Header
}

func (h *harness) send(s sender) (*http.Response, string) {
	r, _ := http.NewRequest(http.MethodPost, "/hooks/"+s.source+"/"+testToken, strings.NewReader(s.body))
	r.Header.Set("Content-Type", "application/json")
	for k, v := range s.header {
		r.Header[k] = v
	}
	w := h.serve(r)
	return w.Result(), w.Body.String()
}

func payloadFixture(t testing.TB, source, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "payload", "testdata", source, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sign(body string) string {
	m := hmac.New(sha256.New, []byte(sendersSecret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func deployedTo(rs []deploy.Request) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Deployment+"="+r.Image+":"+r.Tag)
	}
	slices.Sort(out)
	return out
}

func TestEverySenderDeploys(t *testing.T) {
	t.Parallel()
	ghcr := func(t *testing.T) sender {
		body := payloadFixture(t, "ghcr", "package_published.json")
		return sender{"ghcr", body, http.Header{"X-Github-Event": {"package"}, "X-Github-Delivery": {"d-1"}, "X-Hub-Signature-256": {sign(body)}}}
	}
	generic := func(t *testing.T) sender {
		body := payloadFixture(t, "generic", "with_digest.json")
		return sender{"generic", body, http.Header{"X-Liftoff-Signature-256": {sign(body)}}}
	}
	for _, tt := range []struct {
		name string
		send func(t *testing.T) sender
		want []string
	}{
		{"ghcr package event, signed", ghcr, []string{"gh-web=ghcr.io/acme-corp/web:v1.4.2"}},
		{"generic, signed", generic, []string{"generic-api=registry.example.com:5000/team/api:2.7.0"}},
		{"distribution envelope of 20 events, one deploys", func(t *testing.T) sender {
			return sender{"distribution", payloadFixture(t, "distribution", "batch_v1.json"), http.Header{"Authorization": {sendersAuth},
				"Content-Type": {"application/vnd.docker.distribution.events.v1+json"}}}
		}, []string{"generic-api=registry.example.com:5000/team/api:2.7.0"}},
		{"harbor, every resource with a tag", func(t *testing.T) sender {
			return sender{"harbor", payloadFixture(t, "harbor", "default_push.json"), http.Header{"Authorization": {sendersAuth}}}
		}, nil},
		{"quay list", func(t *testing.T) sender {
			return sender{"quay", payloadFixture(t, "quay", "repo_push_list.json"), nil}
		}, nil},
		{"ecr", func(t *testing.T) sender { return sender{"ecr", payloadFixture(t, "ecr", "push_success.json"), nil} },
			[]string{"ecr-web=123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web:v42"}},
		{"gar, a Pub/Sub push", func(t *testing.T) sender { return sender{"gar", payloadFixture(t, "gar", "insert_tagged.json"), nil} },
			[]string{"gar-web=europe-west1-docker.pkg.dev/acme-prod/apps/web:v42"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := sendersHarness(t)
			res, body := h.send(tt.send(t))
			if res.StatusCode != http.StatusAccepted {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			got := deployedTo(h.dep.requests())
			if tt.want != nil && !slices.Equal(got, tt.want) {
				t.Errorf("deploys %q, want %q\n%s", got, tt.want, body)
			}
			if len(got) == 0 {
				t.Errorf("nothing deployed: %s", body)
			}
			for _, r := range h.dep.requests() {
				if r.Digest != "" {
					t.Errorf("%s: the sender's digest %s was passed on: the engine must resolve the tag itself", r.Deployment, r.Digest)
				}
				if r.Trigger != strings.Trim(strings.Fields(tt.name)[0], ",") {
					t.Errorf("%s: trigger %q", r.Deployment, r.Trigger)
				}
			}
		})
	}
}

// Several tags in one delivery each deploy; the tag that is a digest and
// the untagged events are listed as ignored, with why.
func TestSenderListsWhatItSkips(t *testing.T) {
	t.Parallel()
	h := sendersHarness(t)
	res, body := h.send(sender{"harbor", payloadFixture(t, "harbor", "default_push.json"), http.Header{"Authorization": {sendersAuth}}})
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	if n := len(h.dep.requests()); n < 2 {
		t.Errorf("%d deploys queued from a delivery of several tags, want one per tag\n%s", n, body)
	}
	if ig := fmt.Sprint(h.last().Ignored); !strings.Contains(ig, "digest") {
		t.Errorf("the digest in place of a tag is not listed as ignored: %s", ig)
	}
}

// A wrong or missing signature, or Authorization header, is 401, deploys
// nothing and says nothing of the secret; the auth header is checked
// before the body is read.
func TestSenderAuthRefused(t *testing.T) {
	t.Parallel()
	good := payloadFixture(t, "ghcr", "package_published.json")
	gh := func(sig string) sender {
		return sender{"ghcr", good, http.Header{"X-Github-Event": {"package"}, "X-Github-Delivery": {"d-2"}, "X-Hub-Signature-256": {sig}}}
	}
	for _, tt := range []struct {
		name string
		s    sender
	}{
		{"ghcr without signature", sender{"ghcr", good, http.Header{"X-Github-Event": {"package"}}}},
		{"ghcr signature of another body", gh(sign(good + " "))},
		{"ghcr sha1", gh("sha1=" + strings.Repeat("0", 40))},
		{"ghcr signature in upper case", gh(strings.ToUpper(sign(good)))},
		{"generic signed with GitHub's header", sender{"generic", `{"image": "registry.example.com:5000/team/api", "tag": "2.7.0"}`,
			http.Header{"X-Hub-Signature-256": {sign(`{"image": "registry.example.com:5000/team/api", "tag": "2.7.0"}`)}}}},
		{"distribution without Authorization", sender{"distribution", payloadFixture(t, "distribution", "batch_v1.json"), nil}},
		{"distribution with another Authorization", sender{"distribution", payloadFixture(t, "distribution", "batch_v1.json"),
			http.Header{"Authorization": {sendersAuth + "x"}}}},
		{"harbor with the token as Authorization", sender{"harbor", payloadFixture(t, "harbor", "default_push.json"),
			http.Header{"Authorization": {"Bearer " + testToken}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := sendersHarness(t)
			res, body := h.send(tt.s)
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401: %s", res.StatusCode, body)
			}
			if n := len(h.dep.requests()); n != 0 {
				t.Errorf("%d deploys queued", n)
			}
			for _, secret := range []string{sendersSecret, sendersAuth, testToken} {
				if strings.Contains(body, secret) || strings.Contains(h.logs.String(), secret) {
					t.Errorf("a secret in the answer or the log: %s\n%s", body, h.logs.String())
				}
			}
		})
	}

	// The auth header is checked before the body is read.
	h := sendersHarness(t)
	r, _ := http.NewRequest(http.MethodPost, "/hooks/distribution/"+testToken, readSpy{t})
	if w := h.serve(r); w.Code != http.StatusUnauthorized {
		t.Errorf("distribution without Authorization: status %d", w.Code)
	}
}

// GitHub's redelivery of a delivery answered 202 deploys nothing more; a
// ping answers 200.
func TestGHCRRedeliveryAndPing(t *testing.T) {
	t.Parallel()
	h := sendersHarness(t)
	body := payloadFixture(t, "ghcr", "package_published.json")
	s := sender{"ghcr", body, http.Header{"X-Github-Event": {"package"}, "X-Github-Delivery": {"72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		"X-Hub-Signature-256": {sign(body)}}}
	if res, b := h.send(s); res.StatusCode != http.StatusAccepted {
		t.Fatalf("first delivery: %d %s", res.StatusCode, b)
	}
	res, b := h.send(s)
	if res.StatusCode != http.StatusOK || !strings.Contains(b, `"redelivery":true`) {
		t.Errorf("redelivery: %d %s, want 200 naming it a redelivery", res.StatusCode, b)
	}
	if n := len(h.dep.requests()); n != 1 {
		t.Errorf("%d deploys queued for a delivery and its redelivery, want 1", n)
	}
	// Another delivery id of the same push is a new delivery.
	s.header = s.header.Clone()
	s.header.Set("X-Github-Delivery", "another")
	if res, b := h.send(s); res.StatusCode != http.StatusAccepted {
		t.Errorf("another delivery: %d %s", res.StatusCode, b)
	}

	ping := payloadFixture(t, "ghcr", "ping.json")
	res, b = h.send(sender{"ghcr", ping, http.Header{"X-Github-Event": {"ping"}, "X-Github-Delivery": {"p-1"}, "X-Hub-Signature-256": {sign(ping)}}})
	if res.StatusCode != http.StatusOK {
		t.Errorf("ping: %d %s", res.StatusCode, b)
	}
	if n := len(h.dep.requests()); n != 2 {
		t.Errorf("%d deploys queued after a ping, want 2", n)
	}
}

// A malformed body from a sender whose signature is right is 400 and
// names the field.
func TestSenderMalformed(t *testing.T) {
	t.Parallel()
	h := sendersHarness(t)
	body := `{"image": "registry.example.com:5000/team/api", "tag": "2.7.0", "tag": "2.8.0"}`
	res, b := h.send(sender{"generic", body, http.Header{"X-Liftoff-Signature-256": {sign(body)}}})
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(b, "tag") {
		t.Errorf("duplicate key: %d %s", res.StatusCode, b)
	}
	body = `{"image": "registry.example.com:5000/team/api", "tag": "sha256:` + strings.Repeat("a", 64) + `"}`
	res, b = h.send(sender{"generic", body, http.Header{"X-Liftoff-Signature-256": {sign(body)}}})
	if res.StatusCode/100 == 2 && len(h.dep.requests()) != 0 {
		t.Errorf("a digest as the tag deployed: %d %s", res.StatusCode, b)
	}
}

// serve serves r from client 192.0.2.1.
func (h *harness) serve(r *http.Request) *httptest.ResponseRecorder {
	r.RemoteAddr = "192.0.2.1:1234"
	w := httptest.NewRecorder()
	h.router.ServeHTTP(w, r)
	return w
}

// Every sender's parser is in the hostile-input table too: whatever the
// body, a delivery with the right credentials that is not a valid payload
// queues nothing and logs no secret; what is not a JSON object, or has a
// key twice, is 400. (A sender's event of a type that deploys nothing is
// answered 202 with the reason, so that the sender does not retry it.)
func TestSenderHostileInput(t *testing.T) {
	t.Parallel()
	bodies := map[string]string{
		"empty":              ``,
		"not JSON":           `push`,
		"an array":           `[{"events": []}]`,
		"null":               `null`,
		"nested too deep":    strings.Repeat(`{"a":`, 10000) + `1` + strings.Repeat(`}`, 10000),
		"a NUL in a key":     "{\"ima\x00ge\": \"x\"}",
		"invalid UTF-8":      "{\"image\": \"registry.example.com:5000/team/api\", \"tag\": \"2.7.0\xff\"}",
		"a string for a map": `{"events": "push", "event_data": "x", "detail": "x", "updated_tags": 7, "package": "x", "image": 1}`,
		"duplicate top keys": `{"events": [], "events": [], "event_data": {}, "event_data": {}, "detail": {}, "detail": {}, "repository": "a/b", "repository": "a/c", "image": "a", "image": "b", "action": "x", "action": "y"}`,
	}
	for _, src := range deployments.HookSources() {
		if src == deployments.SourceDockerHub {
			continue // TestHookHostileInput
		}
		for name, body := range bodies {
			t.Run(src+"/"+name, func(t *testing.T) {
				h := sendersHarness(t)
				header := http.Header{"Authorization": {sendersAuth}, "X-Github-Event": {"package"},
					"X-Hub-Signature-256": {sign(body)}, "X-Liftoff-Signature-256": {sign(body)}}
				res, b := h.send(sender{src, body, header})
				refused := !strings.HasPrefix(body, "{") || strings.Contains(name, "duplicate") || strings.Contains(name, "NUL")
				if refused && res.StatusCode != http.StatusBadRequest || !refused && res.StatusCode != http.StatusBadRequest && res.StatusCode != http.StatusAccepted {
					t.Errorf("status %d: %s", res.StatusCode, b)
				}
				if n := len(h.dep.requests()); n != 0 {
					t.Errorf("%d deploys queued", n)
				}
				for _, secret := range []string{sendersSecret, sendersAuth, testToken} {
					if strings.Contains(b+h.logs.String(), secret) {
						t.Errorf("a secret in the answer or the log")
					}
				}
			})
		}
		t.Run(src+"/over 1 MiB", func(t *testing.T) {
			h := sendersHarness(t)
			body := `{"image": "` + strings.Repeat("a", DefaultMaxBody) + `"}`
			res, b := h.send(sender{src, body, http.Header{"Authorization": {sendersAuth}, "X-Github-Event": {"package"},
				"X-Hub-Signature-256": {sign(body)}, "X-Liftoff-Signature-256": {sign(body)}}})
			if res.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("status %d, want 413: %.200s", res.StatusCode, b)
			}
		})
	}
}
