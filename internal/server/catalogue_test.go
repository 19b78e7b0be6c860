package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

const realConfig = `
hooks:
  - source: dockerhub
    token: ${HOOK_TOKEN}
environments:
  staging: {}
  production: {}
deployments:
  - name: dblood-staging
    image: pmpl/dblood
    tags: [staging]
    environment: staging
  - name: dblood-production
    image: docker.io/pmpl/dblood
    tags: ["semver:^1"]
    environment: production
  - name: proxy
    image: nginx
    tags: ["glob:1.27*"]
    environment: production
`

// TestRealCatalogue runs deliveries against a *deployments.Config, the
// catalogue of production, rather than a fake.
func TestRealCatalogue(t *testing.T) {
	cfg, err := deployments.Parse([]byte(realConfig), t.TempDir(), func(k string) (string, bool) {
		if k == "HOOK_TOKEN" {
			return testToken, true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(o *Options) { o.Catalogue = func() Catalogue { return cfg } })

	tests := []struct {
		name, target, body string
		status             int
		accepted           []string
		ignored            int
	}{
		{"staging push", "/hooks/dockerhub/" + testToken, fixture(t, "push.json"), http.StatusAccepted, []string{"dblood-staging"}, 1},
		{"release push", "/hooks/dockerhub/" + testToken, strings.Replace(fixture(t, "push.json"), `"tag": "staging"`, `"tag": "1.4.2"`, 1),
			http.StatusAccepted, []string{"dblood-production"}, 1},
		{"library/nginx", "/hooks/dockerhub/" + testToken, fixture(t, "official_library.json"), http.StatusAccepted, []string{"proxy"}, 0},
		{"nginx", "/hooks/dockerhub/" + testToken, fixture(t, "official_short.json"), http.StatusAccepted, []string{"proxy"}, 0},
		{"repo not deployed", "/hooks/dockerhub/" + testToken, fixture(t, "push_legacy.json"), http.StatusAccepted, []string{}, 1},
		{"signature tag", "/hooks/dockerhub/" + testToken, strings.Replace(fixture(t, "push.json"), `"tag": "staging"`, `"tag": "sha256-`+strings.Repeat("ab", 32)+`.sig"`, 1),
			http.StatusAccepted, []string{}, 1},
		{"wrong token", "/hooks/dockerhub/" + testToken + "x", fixture(t, "push.json"), http.StatusNotFound, nil, 0},
		{"unknown source", "/hooks/quay/" + testToken, fixture(t, "push.json"), http.StatusNotFound, nil, 0},
		{"invalid tag", "/hooks/dockerhub/" + testToken, strings.Replace(fixture(t, "push.json"), `"tag": "staging"`, `"tag": "a/b"`, 1), http.StatusBadRequest, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.dep.requests())
			w := h.do(http.MethodPost, tt.target, strings.NewReader(tt.body))
			if w.Code != tt.status {
				t.Fatalf("status %d body %s, want %d", w.Code, w.Body, tt.status)
			}
			if tt.status != http.StatusAccepted {
				if after := len(h.dep.requests()); after != before {
					t.Errorf("%d deploys queued", after-before)
				}
				return
			}
			var a apiv1.HookAnswer
			if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
				t.Fatal(err)
			}
			if a.Accepted != len(tt.accepted) || a.Ignored != tt.ignored {
				t.Errorf("body %s: want accepted %v and %d ignored", w.Body, tt.accepted, tt.ignored)
			}
			if after := len(h.dep.requests()); after-before != len(tt.accepted) {
				t.Errorf("%d deploys queued, want %d", after-before, len(tt.accepted))
			}
		})
	}
}
