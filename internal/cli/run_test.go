package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut, func(k string) (string, bool) {
		if k == "LIFTOFF_HOOK_TOKEN" {
			return "cli-test-token-0123456789abcdef", true
		}
		return "", false
	})
	return code, out.String(), errOut.String()
}

// run is Run with its Env spelled out.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	return Run(ctx, args, Env{Stdout: stdout, Stderr: stderr, Lookup: lookup})
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "liftoff.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateCommand(t *testing.T) {
	code, out, _ := runCLI(t, "validate", "--config", "../../deployments/example.yaml")
	if code != ExitOK || !strings.Contains(out, "valid (") {
		t.Errorf("example.yaml: exit %d, %q", code, out)
	}

	bad := writeConfig(t, `
hooks: [{source: dockerhub, token: tok3n-v4lue}]
environments:
  production:
    require: [SECRET_KEY]
    forbid: {DEBUG: ["True"]}
deployments:
  - name: web
    image: acme/web
    tags: ["semver:^foo", "glob:["]
    environment: production
    env: {DEBUG: "True"}
    unknown_key: 1
`)
	code, _, errOut := runCLI(t, "validate", "--config", bad)
	if code != ExitUsage {
		t.Errorf("invalid config: exit %d, want %d", code, ExitUsage)
	}
	for _, want := range []string{"invalid", "unknown_key"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate output lacks %q:\n%s", want, errOut)
		}
	}

	bad = writeConfig(t, `
hooks: [{source: dockerhub, token: tok3n-v4lue}]
environments:
  production:
    forbid: {DEBUG: ["True"]}
deployments:
  - name: web
    image: acme/web
    tags: ["semver:^foo"]
    environment: production
    env: {DEBUG: "True"}
`)
	code, _, errOut = runCLI(t, "validate", "--config", bad)
	for _, want := range []string{"hooks[0].token", "deployments[0].tags[0]", "DEBUG"} {
		if code != ExitUsage || !strings.Contains(errOut, want) {
			t.Errorf("exit %d; validate output lacks %q:\n%s", code, want, errOut)
		}
	}
	if strings.Contains(errOut, "tok3n-v4lue") {
		t.Errorf("the token's value appears in the error:\n%s", errOut)
	}

	warn := writeConfig(t, `
hooks: [{source: dockerhub, token: "${LIFTOFF_HOOK_TOKEN}"}]
environments:
  production:
    require: [SECRET_KEY]
deployments:
  - {name: web, image: acme/web, tags: [latest], environment: production}
`)
	code, out, _ = runCLI(t, "validate", "--config", warn)
	if code != ExitOK || !strings.Contains(out, "warning: deployments[0] (web): SECRET_KEY is required") {
		t.Errorf("exit %d, want a warning about SECRET_KEY:\n%s", code, out)
	}

	if code, _, errOut := runCLI(t, "validate", "--config", filepath.Join(t.TempDir(), "none.yaml")); code != ExitUsage || errOut == "" {
		t.Errorf("missing file: exit %d %q", code, errOut)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{nil, ExitUsage, ""},
		{[]string{"help"}, ExitOK, "liftoff serve"},
		{[]string{"nosuch"}, ExitUsage, ""},
		{[]string{"version"}, ExitOK, "liftoff "},
		{[]string{"--version"}, ExitOK, "liftoff "},
		{[]string{"help", "nosuch"}, ExitUsage, ""},
		{[]string{"--server", "http://127.0.0.1:1", "serve"}, ExitUsage, "--server is a flag of the client commands"},
		{[]string{"validate", "--json"}, ExitUsage, "--json is a flag of the client commands"},
		{[]string{"serve", "--help"}, ExitOK, "--log-format"},
		{[]string{"validate", "-h"}, ExitOK, "--config"},
		{[]string{"serve", "--log-level", "loud", "--config", "x"}, ExitUsage, ""},
		{[]string{"serve", "--log-format", "xml", "--config", "x"}, ExitUsage, ""},
		{[]string{"serve", "extra"}, ExitUsage, ""},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.out) {
			t.Errorf("liftoff %v: exit %d, output %q; want %d with %q", tc.args, code, out+errOut, tc.code, tc.out)
		}
	}
}

// TestAuditCommand: audit says each finding with its field, what and why;
// exits 0 with findings, 1 with --strict, 2 for an invalid file; and
// prints no secret.
func TestAuditCommand(t *testing.T) {
	risky := writeConfig(t, `
listen: ":8080"
hook_rate_limit: -1
hooks: [{source: dockerhub, token: "${LIFTOFF_HOOK_TOKEN}"}]
api_tokens: [{name: root, token: audit-root-token-0123456789abcdef, scopes: [admin]}]
`)
	code, out, errOut := runCLI(t, "audit", "--config", risky)
	if code != ExitOK || !strings.Contains(out, ": 4 findings") || !strings.Contains(out, "hook_rate_limit: the rate limit of /hooks is off") ||
		!strings.Contains(out, `api_tokens[0].scopes: token "root" has admin`) || !strings.Contains(out, "  it may deploy, roll back") {
		t.Errorf("audit: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "audit-root-token") || strings.Contains(out+errOut, "cli-test-token") {
		t.Errorf("audit printed a token:\n%s%s", out, errOut)
	}
	if code, _, _ := runCLI(t, "audit", "--strict", "--config", risky); code != ExitFailed {
		t.Errorf("audit --strict with findings: exit %d, want %d", code, ExitFailed)
	}
	safe := writeConfig(t, "listen: \"127.0.0.1:8080\"\nhooks: [{source: dockerhub, token: \"${LIFTOFF_HOOK_TOKEN}\"}]\n")
	if code, out, _ := runCLI(t, "audit", "--strict", "--config", safe); code != ExitOK || !strings.Contains(out, "no findings") {
		t.Errorf("audit --strict of a careful config: exit %d %q", code, out)
	}
	bad := writeConfig(t, "listen: nowhere\n")
	if code, _, errOut := runCLI(t, "audit", "--config", bad); code != ExitUsage || !strings.Contains(errOut, "invalid") {
		t.Errorf("audit of an invalid file: exit %d %q", code, errOut)
	}
}
