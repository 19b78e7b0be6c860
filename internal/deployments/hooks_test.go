package deployments

import (
	"crypto/sha256"
	"strings"
	"testing"
)

func TestHookAuth(t *testing.T) {
	c := mustParse(t, `hooks: [{source: dockerhub, token: "${HOOK_TOKEN}"}]`)
	tests := []struct {
		source, token string
		want          bool
	}{
		{"dockerhub", hookToken, true},
		{"dockerhub", hookToken[:len(hookToken)-1], false},
		{"dockerhub", hookToken + "x", false},
		{"dockerhub", strings.ToUpper(hookToken), false},
		{"dockerhub", "", false},
		{"ghcr", hookToken, false},
		{"", hookToken, false},
		{"", "", false},
	}
	for _, tt := range tests {
		if got := c.HookAuth(tt.source, tt.token); got != tt.want {
			t.Errorf("HookAuth(%q, %q) = %v", tt.source, tt.token, got)
		}
	}
	if Default().HookAuth("dockerhub", "") || Default().HookAuth("", "") {
		t.Error("a config without hooks authenticates something")
	}
	// Only the hash is kept for authentication.
	if len(c.hookSums) != 1 || c.hookSums[0].sum != sha256.Sum256([]byte(hookToken)) {
		t.Errorf("hookSums = %v", c.hookSums)
	}
}

// Each hook's secret and auth_header come with its token, and only with
// it; the config's fields keep none of them once loaded.
func TestHookFor(t *testing.T) {
	c := mustParse(t, `hooks:
  - {source: ghcr, token: "${HOOK_TOKEN}", secret: "${HOOK_SECRET}"}
  - {source: harbor, token: "${OTHER_TOKEN}", auth_header: "Bearer ${HOOK_SECRET}"}
  - {source: quay, token: "${HOOK_TOKEN}"}`)
	gh, ok := c.HookFor("ghcr", hookToken)
	if !ok || string(gh.Secret()) != hookSecret || !gh.AuthOK("") {
		t.Errorf("ghcr: ok %v, secret %q, AuthOK without auth_header %v", ok, gh.Secret(), gh.AuthOK(""))
	}
	hb, ok := c.HookFor("harbor", otherToken)
	if !ok || hb.Secret() != nil {
		t.Fatalf("harbor: ok %v, secret %q", ok, hb.Secret())
	}
	for header, want := range map[string]bool{"Bearer " + hookSecret: true, "Bearer " + hookSecret + " ": false,
		"bearer " + hookSecret: false, hookSecret: false, "": false} {
		if got := hb.AuthOK(header); got != want {
			t.Errorf("harbor AuthOK(%q) = %v, want %v", header, got, want)
		}
	}
	if q, ok := c.HookFor("quay", hookToken); !ok || q.Secret() != nil || !q.AuthOK("anything") {
		t.Errorf("quay: ok %v, %+v", ok, q)
	}
	for _, miss := range [][2]string{{"ghcr", otherToken}, {"harbor", hookToken}, {"generic", hookToken}} {
		if got, ok := c.HookFor(miss[0], miss[1]); ok || got.Secret() != nil {
			t.Errorf("HookFor(%s, a token of another hook) = %v, %v", miss[0], got, ok)
		}
	}
	for i, h := range c.Hooks {
		if h.Token != "" || h.Secret != "" || h.AuthHeader != "" {
			t.Errorf("hooks[%d] still holds a secret once loaded: %+v", i, h)
		}
	}
}
