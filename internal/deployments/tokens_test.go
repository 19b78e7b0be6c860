package deployments

import "testing"

// TestIsToken: hook tokens of every source and API tokens are tokens;
// anything else, a near miss included, is not.
func TestIsToken(t *testing.T) {
	c := mustParse(t, `
hooks:
  - {source: dockerhub, token: hub-token-0123456789abcdef01}
  - {source: quay, token: quay-token-0123456789abcdef0}
api_tokens:
  - {name: ci, token: api-token-0123456789abcdef012, scopes: [read]}
`)
	for v, want := range map[string]bool{
		"hub-token-0123456789abcdef01": true, "quay-token-0123456789abcdef0": true, "api-token-0123456789abcdef012": true,
		"hub-token-0123456789abcdef0": false, "latest": false, "": false,
	} {
		if got := c.IsToken(v); got != want {
			t.Errorf("IsToken(%q) = %v, want %v", v, got, want)
		}
	}
}
