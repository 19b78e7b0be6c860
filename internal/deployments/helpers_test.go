package deployments

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Secret values the tests hand to the loader. No error may ever contain
// one (FILESECRET marks every value in testdata's env, secret and password
// files).
const (
	envSecret = "ENVSECRET-0f1e2d3c4b5a"
	hookToken = "0123456789abcdef0123456789abcdef01234567"
	// A second hook's token, and a hook's secret (or auth_header's).
	otherToken = "fedcba9876543210fedcba9876543210"
	hookSecret = "HOOKSECRET-0123456789abcdef0123"
	// API tokens: APISECRET marks every one.
	ciToken   = "APISECRET-ci-0123456789abcdef"
	leadToken = "APISECRET-lead-0123456789abcdef"
)

var leakMarkers = []string{envSecret, hookToken, otherToken, hookSecret, "FILESECRET", "APISECRET"}

func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// testEnv is liftoff's environment in tests: the hook and API tokens and a
// secret.
func testEnv() map[string]string {
	return map[string]string{"HOOK_TOKEN": hookToken, "OTHER_TOKEN": otherToken, "HOOK_SECRET": hookSecret, "SECRET": envSecret, "HOME": "/home/liftoff",
		"CI_TOKEN": ciToken, "LEAD_TOKEN": leadToken}
}

// head is a valid start of a config that cases add deployments to.
const head = `hooks: [{source: dockerhub, token: "${HOOK_TOKEN}"}]
environments: {production: {}, staging: {}}
`

func parseString(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	return Parse([]byte(yaml), "testdata", lookupMap(testEnv()))
}

func mustParse(t *testing.T, yaml string) *Config {
	t.Helper()
	c, err := parseString(t, yaml)
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	return c
}

// noLeak fails when text holds a secret value.
func noLeak(t *testing.T, text string) {
	t.Helper()
	for _, m := range leakMarkers {
		if strings.Contains(text, m) {
			t.Errorf("secret %q leaked in:\n%s", m, text)
		}
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// exampleDir holds the commented example config users copy, and the fake
// env and secret files it names.
const exampleDir = "../../deployments"

// exampleYAML is that config's path.
var exampleYAML = filepath.Join(exampleDir, "example.yaml")
