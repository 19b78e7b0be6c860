package deployments

import (
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
	// Only hashes are kept for authentication.
	for _, h := range c.hookSums {
		if strings.Contains(string(h.sum[:]), hookToken) {
			t.Error("plain token in hookSums")
		}
	}
}
