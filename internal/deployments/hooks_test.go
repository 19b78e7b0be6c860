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
