package deployments

import (
	"errors"
	"strings"
	"testing"
)

const policyConfig = head + `
environments:
  production:
    require: [SECRET_KEY, DATABASE_URL]
    forbid: {DEBUG: ["True", "true", "1"]}
    forbid_patterns: {DJANGO_SETTINGS_MODULE: ['\.staging$', '^dev\.']}
  staging: {}
deployments:
  - {name: prod, image: acme/web, tags: [latest], environment: production}
  - {name: stg, image: acme/web, tags: [staging], environment: staging}
  - {name: none, image: acme/web, tags: [x]}
`

func TestCheckPolicy(t *testing.T) {
	c := mustParse(t, strings.Replace(policyConfig, "environments: {production: {}, staging: {}}\n", "", 1))
	prod := c.Deployment("prod")
	ok := []string{"SECRET_KEY=FILESECRET", "DATABASE_URL=FILESECRET", "DEBUG=False", "DJANGO_SETTINGS_MODULE=app.settings.production"}
	if err := c.CheckPolicy(prod, ok); err != nil {
		t.Errorf("valid env: %v", err)
	}
	tests := []struct {
		env  []string
		want []string
	}{
		{[]string{"DATABASE_URL=FILESECRET"}, []string{"SECRET_KEY: required in production but not set"}},
		{[]string{"SECRET_KEY=", "DATABASE_URL=FILESECRET"}, []string{"SECRET_KEY: required in production but empty"}},
		{append(ok, "DEBUG=True"), []string{"DEBUG: value is forbidden in production"}},
		{append(ok, "DJANGO_SETTINGS_MODULE=FILESECRET.staging"), []string{`DJANGO_SETTINGS_MODULE: matches forbidden pattern \.staging$ in production`}},
		{[]string{"DEBUG=1", "DJANGO_SETTINGS_MODULE=dev.FILESECRET"}, []string{
			"SECRET_KEY: required in production but not set", "DATABASE_URL: required in production but not set",
			"DEBUG: value is forbidden in production", `DJANGO_SETTINGS_MODULE: matches forbidden pattern ^dev\. in production`}},
		// The last of duplicate keys counts, as in Docker.
		{append(ok, "DEBUG=true", "DEBUG=False"), nil},
	}
	for _, tt := range tests {
		err := c.CheckPolicy(prod, tt.env)
		if len(tt.want) == 0 {
			if err != nil {
				t.Errorf("%q: %v", tt.env, err)
			}
			continue
		}
		if !errors.Is(err, ErrPolicy) {
			t.Fatalf("%q: %v does not wrap ErrPolicy", tt.env, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: missing %q in %v", tt.env, w, err)
			}
		}
		if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.want) {
			t.Errorf("%q: %d violations, want %d: %v", tt.env, n, len(tt.want), err)
		}
		noLeak(t, err.Error())
	}
	// No policy: anything goes.
	for _, name := range []string{"stg", "none"} {
		if err := c.CheckPolicy(c.Deployment(name), []string{"DEBUG=True"}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// What the config itself sets beats the image's ENV, so a violation there
// is certain at load: an error naming the field that sets it.
func TestConfigPolicyViolations(t *testing.T) {
	_, err := parseString(t, `hooks: [{source: dockerhub, token: "${HOOK_TOKEN}"}]
environments:
  production:
    env: {DEBUG: "True"}
    require: [SECRET_KEY]
    forbid: {DEBUG: ["True"]}
    forbid_patterns: {SETTINGS: ['staging']}
deployments:
  - name: web
    image: acme/web
    tags: [latest]
    environment: production
    env: {SETTINGS: "${SECRET}staging"}
    env_files: [base.env]
    secret_files: {SECRET_KEY: empty-secret}
`)
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		"environments.production.env: DEBUG: value is forbidden in production",
		"deployments[0].env: SETTINGS: matches forbidden pattern staging in production",
		"deployments[0].secret_files.SECRET_KEY: SECRET_KEY: required in production but empty",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("missing %q in:\n%v", w, err)
		}
	}
	if !errors.Is(err, ErrPolicy) {
		t.Error("does not wrap ErrPolicy")
	}
	noLeak(t, err.Error())
}

func TestValidatePolicies(t *testing.T) {
	c := mustParse(t, strings.Replace(policyConfig, "environments: {production: {}, staging: {}}\n", "", 1))
	w := c.ValidatePolicies()
	if len(w) != 2 || !strings.Contains(w[0], "deployments[0] (prod): SECRET_KEY is required in production but no layer of the config sets it") ||
		!strings.Contains(w[1], "DATABASE_URL") {
		t.Errorf("warnings = %q", w)
	}
}
