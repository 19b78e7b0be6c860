package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

// TestPauseAnswersWhatItDid: a pause (or a resume) that took effect
// answers 200 with paused true even while the container engine does not
// answer; engine_error says why what runs is unknown. (It answered 503,
// and a client retried a pause that had happened.)
func TestPauseAnswersWhatItDid(t *testing.T) {
	u := newUIHarness(t)
	b := u.browser(t)
	b.header.Set("Authorization", "Bearer "+uiAdmin)
	u.eng.mu.Lock()
	u.eng.engineDown = fmt.Errorf("dial unix /nope: %w", deploy.ErrUnavailable)
	u.eng.mu.Unlock()
	w := b.post("/api/v1/deployments/web-staging/pause", nil)
	var got struct { // apiv1.Acted: the deployment's fields, inline
		Paused      bool
		EngineError *string `json:"engine_error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); w.Code != http.StatusOK || err != nil {
		t.Fatalf("pause with the engine away: %d %v\n%s", w.Code, err, w.Body)
	}
	if !got.Paused || got.EngineError == nil || !strings.Contains(*got.EngineError, "/nope") {
		t.Errorf("pause answered %s", w.Body)
	}
	if w := b.post("/api/v1/deployments/web-staging/resume", nil); w.Code != http.StatusOK {
		t.Errorf("resume with the engine away: %d %s", w.Code, w.Body)
	}
	if c := u.eng.called(); !slices.Equal(c, []string{"pause web-staging root", "resume web-staging root"}) {
		t.Errorf("engine calls: %v", c)
	}
}

// TestBearerAnyCase: the API and the page read Authorization with one
// rule: the scheme's case does not matter.
func TestBearerAnyCase(t *testing.T) {
	u := newUIHarness(t)
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		b := u.browser(t)
		b.header.Set("Authorization", scheme+" "+uiRead)
		for _, path := range []string{"/api/v1/deployments", "/"} {
			if w := b.get(path); w.Code != http.StatusOK {
				t.Errorf("GET %s with %q: %d", path, scheme, w.Code)
			}
		}
		b.header.Set("Authorization", scheme+" "+uiUnknown)
		for _, path := range []string{"/api/v1/deployments", "/"} {
			if w := b.get(path); w.Code != http.StatusUnauthorized {
				t.Errorf("GET %s with %q and an unknown token: %d, want 401", path, scheme, w.Code)
			}
		}
	}
}
