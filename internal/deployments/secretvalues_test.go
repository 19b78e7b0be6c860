package deployments

import (
	"slices"
	"testing"
)

// TestSecretValues: every value ${VAR} brought into the config, long
// enough to redact, is a secret wherever it lands (a release command's
// argument here); hook and API tokens are not kept.
func TestSecretValues(t *testing.T) {
	env := map[string]string{"HOOK": "hook-token-0123456789abcdef0123", "PASS": "in-an-argument", "ON": "on", "DSN": "db-host"}
	cfg, err := Parse([]byte(`
hooks: [{source: dockerhub, token: "${HOOK}"}]
deployments:
  - name: web
    image: acme/web
    tags: [latest]
    env: {FLAG: "${ON}"}
    release: {command: [migrate, "--password=${PASS}", "--host=${DSN}"]}
`), t.TempDir(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.SecretValues(), []string{"db-host", "in-an-argument"}; !slices.Equal(got, want) {
		t.Errorf("SecretValues = %q, want %q (not the hook token, not values shorter than %d)", got, want, MinSecretLen)
	}
}
