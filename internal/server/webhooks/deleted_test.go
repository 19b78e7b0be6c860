package webhooks

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// previewCatalogue is the default fake with previews: web's previews rule
// takes pr-* of registry.example.com:5000/acme/web, and api's of
// registry.example.com:5000/acme/api.
type previewCatalogue struct{ *fakeCatalogue }

func (previewCatalogue) PreviewsOf(repo, tag string) []*deployments.Deployment {
	if !strings.HasPrefix(tag, "pr-") {
		return nil
	}
	switch repo {
	case "registry.example.com:5000/acme/web":
		return []*deployments.Deployment{{Name: "web"}}
	case "registry.example.com:5000/acme/api":
		return []*deployments.Deployment{{Name: "api"}}
	}
	return nil
}

// previewDeployer is a fakeDeployer whose running previews are running;
// it records every RemovePreviewLater.
type previewDeployer struct {
	*fakeDeployer
	running []string // "<deployment>-<tag>"

	mu      sync.Mutex
	removed []string // "<deployment> <tag>: why", of each call
}

func (d *previewDeployer) RemovePreviewLater(deployment, tag, why string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.removed = append(d.removed, deployment+" "+tag+": "+why)
	return slices.Contains(d.running, deployment+"-"+tag)
}

func (d *previewDeployer) calls() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.removed...)
}

// distDelete is a v3 registry's delivery of the delete of repo:tag.
func distDelete(repo, tag string) string {
	b, _ := json.Marshal(map[string]any{"events": []any{map[string]any{
		"id": "d-" + tag, "timestamp": "2026-12-07T04:01:02Z", "action": "delete",
		"target":  map[string]any{"repository": repo, "tag": tag},
		"request": map[string]any{"host": "registry.example.com:5000", "method": "DELETE"},
		"actor":   map[string]any{"name": "ci-bot"}}}})
	return string(b)
}

// TestDeleteRemovesPreview: a registry's delete of a tag reaches the
// engine's removal only for a deployment whose previews rule takes the
// tag, removes nothing else, deploys nothing, and is answered 202 with
// the delete counted as ignored; the log and the history say what was
// removed and why.
func TestDeleteRemovesPreview(t *testing.T) {
	tests := []struct {
		name, repo, tag string
		wantCalls       []string // RemovePreviewLater calls
		wantWhy         string   // in the history's reasons
	}{
		{"a running preview", "acme/web", "pr-7", []string{"web pr-7: " + whyDeleted},
			"tag deleted from the registry: removing its preview web-pr-7"},
		{"a preview that does not run", "acme/web", "pr-8", []string{"web pr-8: " + whyDeleted},
			"tag deleted from the registry: no preview of it runs; nothing is removed"},
		{"a tag no previews rule takes", "acme/web", "v1.2.0", nil,
			"tag deleted from the registry: no preview of it runs; nothing is removed"},
		{"another repository's preview tag", "acme/other", "pr-7", nil,
			"tag deleted from the registry: no preview of it runs; nothing is removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dep := &previewDeployer{fakeDeployer: &fakeDeployer{}, running: []string{"web-pr-7", "api-pr-7"}}
			h := newHarness(t, func(o *Options) {
				o.Deployer = dep
			})
			h.cat.HookAuthFn = func(source, token string) bool { return source == "distribution" && token == testToken }
			h.hh.catalogue = func() Catalogue { return previewCatalogue{h.cat} }
			w := h.do(http.MethodPost, "/hooks/distribution/"+testToken, strings.NewReader(distDelete(tt.repo, tt.tag)))
			if w.Code != http.StatusAccepted {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var ans struct{ Accepted, Ignored int }
			if err := json.Unmarshal(w.Body.Bytes(), &ans); err != nil || ans.Accepted != 0 || ans.Ignored != 1 {
				t.Errorf("answer %s (%v), want 0 accepted, 1 ignored", w.Body, err)
			}
			if got := dep.calls(); !slices.Equal(got, tt.wantCalls) {
				t.Errorf("removals %q, want %q", got, tt.wantCalls)
			}
			if rs := dep.requests(); len(rs) != 0 {
				t.Errorf("a delete deployed: %+v", rs)
			}
			if got := h.cat.matches(); len(got) != 0 {
				t.Errorf("a delete was matched as a push: %v", got)
			}
			last := h.last()
			if last.Image != "registry.example.com:5000/"+tt.repo || last.Tag != tt.tag {
				t.Errorf("history lists %s:%s", last.Image, last.Tag)
			}
			if len(last.Ignored) != 1 || last.Ignored[0].Reason != tt.wantWhy || last.Ignored[0].Tag != tt.tag {
				t.Errorf("history: %+v, want %q for %s", last.Ignored, tt.wantWhy, tt.tag)
			}
			if !strings.Contains(h.logs.String(), tt.wantWhy) {
				t.Errorf("the log does not say %q:\n%s", tt.wantWhy, h.logs.String())
			}
		})
	}
}

// TestDeleteWithoutPreviews: a catalogue or a deployer that knows no
// previews removes nothing; the delete is answered 202 and ignored.
func TestDeleteWithoutPreviews(t *testing.T) {
	h := newHarness(t, nil) // fakeDeployer has no RemovePreviewLater
	h.cat.HookAuthFn = func(source, token string) bool { return source == "distribution" && token == testToken }
	h.hh.catalogue = func() Catalogue { return previewCatalogue{h.cat} }
	w := h.do(http.MethodPost, "/hooks/distribution/"+testToken, strings.NewReader(distDelete("acme/web", "pr-7")))
	if w.Code != http.StatusAccepted || !strings.Contains(w.Body.String(), `"ignored":1`) {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
}
