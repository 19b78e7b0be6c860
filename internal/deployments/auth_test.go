package deployments

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// hookHead is a valid start of a config that sets its own environments.
const hookHead = "hooks: [{source: dockerhub, token: \"${HOOK_TOKEN}\"}]\n"

// apiConfig has the two tokens, a third with admin, and approval
// required in production.
const apiConfig = hookHead + `api_listen: "127.0.0.1:8081"
api_tokens:
  - {name: ci,   token: "${CI_TOKEN}",   scopes: ["deploy:staging", read]}
  - {name: lead, token: "${LEAD_TOKEN}", scopes: ["approve:production", "deploy:*", read]}
  - {name: ops,  token: "APISECRET-ops-literal-0123456789", scopes: [admin]}
environments:
  production: {approval: {required: true}}
  staging: {}
deployments:
  - {name: web, image: acme/web, tags: [latest], environment: production}
  - {name: web-staging, image: acme/web, tags: [staging], environment: staging}
  - {name: tool, image: acme/tool, tags: [latest]}
`

func TestAPITokensLoad(t *testing.T) {
	c := mustParse(t, apiConfig)
	if c.APIListen != "127.0.0.1:8081" || !c.APIEnabled() || len(c.apiKeys) != 3 {
		t.Fatalf("api_listen %q, enabled %v, %d keys", c.APIListen, c.APIEnabled(), len(c.apiKeys))
	}
	for i, tok := range []string{ciToken, leadToken, "APISECRET-ops-literal-0123456789"} {
		// Only the hash is kept; the plain token is gone.
		if c.APITokens[i].Token != "" {
			t.Errorf("api_tokens[%d].token kept after loading", i)
		}
		if c.apiKeys[i].sum != sha256.Sum256([]byte(tok)) {
			t.Errorf("api_tokens[%d]: the hash is not the token's", i)
		}
	}
	noLeak(t, fmt.Sprintf("%+v %#v", c, c.APITokens))

	p, ok := c.APIAuth(leadToken)
	if !ok || p.Name != "lead" || !reflect.DeepEqual(p.Scopes(), []string{"approve:production", "deploy:*", "read"}) {
		t.Errorf("APIAuth(lead) = %+v, %v", p, ok)
	}
	// Scopes is a copy.
	p.Scopes()[0] = "admin"
	if p.Scopes()[0] != "approve:production" || p.Can(VerbApprove, "staging") {
		t.Error("Scopes() hands out the principal's own slice")
	}

	if Default().APIEnabled() {
		t.Error("a config without api_tokens has the API enabled")
	}
	c2 := mustParse(t, head)
	if c2.APIEnabled() || c2.APIListen != "" {
		t.Errorf("no api_tokens: enabled %v, api_listen %q", c2.APIEnabled(), c2.APIListen)
	}

	// Validate is idempotent on a loaded config, whose tokens are gone: the
	// hashes taken at load stay, scopes are checked again.
	if err := c.Validate(); err != nil {
		t.Fatalf("second Validate: %v", err)
	}
	if p, ok := c.APIAuth(ciToken); !ok || p.Name != "ci" || !p.Can(VerbDeploy, "staging") {
		t.Errorf("after revalidation APIAuth(ci) = %+v, %v", p, ok)
	}
}

func TestAPIAuth(t *testing.T) {
	c := mustParse(t, apiConfig)
	tests := []struct {
		token string
		want  string // principal name; "" for no match
	}{
		{ciToken, "ci"},     // the first
		{leadToken, "lead"}, // one in the middle
		{"APISECRET-ops-literal-0123456789", "ops"}, // the last, written literally
		{ciToken[:len(ciToken)-1], ""},
		{ciToken + "x", ""},
		{"x" + ciToken, ""},
		{strings.ToUpper(ciToken), ""},
		{" " + ciToken, ""},
		{ciToken + "\n", ""},
		{hookToken, ""}, // a hook token is no API token
		{"Bearer " + ciToken, ""},
		{"", ""},
		{strings.Repeat("a", 100000), ""},
	}
	for _, tt := range tests {
		p, ok := c.APIAuth(tt.token)
		if ok != (tt.want != "") || p.Name != tt.want {
			t.Errorf("APIAuth(%.20q) = %q, %v; want %q", tt.token, p.Name, ok, tt.want)
		}
		if !ok && !reflect.DeepEqual(p, Principal{}) {
			t.Errorf("APIAuth(%.20q) failed but returned %+v", tt.token, p)
		}
		// The sum of a token (what a status page session keeps) finds
		// the same principal, but for the empty token.
		if ps, ok := c.APIAuthSum(sha256.Sum256([]byte(tt.token))); tt.token != "" && (ok != (tt.want != "") || !reflect.DeepEqual(ps, p)) {
			t.Errorf("APIAuthSum(sum of %.20q) = %q, %v; want %q", tt.token, ps.Name, ok, tt.want)
		}
	}
	// An API token is no hook token either.
	if c.HookAuth(SourceDockerHub, ciToken) {
		t.Error("HookAuth accepts an API token")
	}
	for _, cfg := range []*Config{Default(), mustParse(t, head)} {
		if p, ok := cfg.APIAuth(""); ok || p.Name != "" {
			t.Error("a config without api_tokens authenticates the empty token")
		}
		if _, ok := cfg.APIAuth(ciToken); ok {
			t.Error("a config without api_tokens authenticates a token")
		}
	}
}

// APIAuth goes through every token: whichever position the right one has
// among many, it is found, and only it.
func TestAPIAuthEveryPosition(t *testing.T) {
	const n = 20
	var b strings.Builder
	b.WriteString(head + "api_tokens:\n")
	env := testEnv()
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("APISECRET-%02d-0123456789abcdef", i)
		env[fmt.Sprintf("T%d", i)] = tokens[i]
		fmt.Fprintf(&b, "  - {name: t%02d, token: \"${T%d}\", scopes: [read]}\n", i, i)
	}
	c, err := Parse([]byte(b.String()), "testdata", lookupMap(env))
	if err != nil {
		t.Fatal(err)
	}
	for i, tok := range tokens {
		p, ok := c.APIAuth(tok)
		if want := fmt.Sprintf("t%02d", i); !ok || p.Name != want {
			t.Errorf("token %d: APIAuth = %q, %v; want %q", i, p.Name, ok, want)
		}
		// A token differing from it in the last byte only matches nothing.
		near := tok[:len(tok)-1] + "g"
		if p, ok := c.APIAuth(near); ok {
			t.Errorf("near miss of token %d matched %q", i, p.Name)
		}
	}
}

func TestPrincipalCan(t *testing.T) {
	c := mustParse(t, hookHead+`environments: {production: {}, staging: {}, qa: {}}
api_tokens:
  - {name: reader,   token: "APISECRET-reader-0123456789", scopes: [read]}
  - {name: admin,    token: "APISECRET-admin-01234567890", scopes: [admin]}
  - {name: stg,      token: "APISECRET-stg-0123456789abc", scopes: ["deploy:staging"]}
  - {name: prod,     token: "APISECRET-prod-0123456789ab", scopes: ["deploy:production", "deploy:qa"]}
  - {name: approver, token: "APISECRET-appr-0123456789ab", scopes: ["approve:production"]}
  - {name: alldep,   token: "APISECRET-alldep-0123456789", scopes: ["deploy:*"]}
  - {name: allapp,   token: "APISECRET-allapp-0123456789", scopes: ["approve:*", read]}
`)
	checks := []struct {
		verb Verb
		env  string
	}{
		0: {VerbRead, ""}, 1: {VerbRead, "production"},
		2: {VerbDeploy, "staging"}, 3: {VerbDeploy, "production"}, 4: {VerbDeploy, "qa"}, 5: {VerbDeploy, ""},
		6: {VerbApprove, "staging"}, 7: {VerbApprove, "production"}, 8: {VerbApprove, ""},
		9: {Verb("delete"), "production"}, 10: {Verb(""), ""},
	}
	tests := []struct {
		token, name string
		can         []int // the checks it passes
	}{
		{"APISECRET-reader-0123456789", "reader", []int{0, 1}},
		{"APISECRET-admin-01234567890", "admin", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"APISECRET-stg-0123456789abc", "stg", []int{2}},
		{"APISECRET-prod-0123456789ab", "prod", []int{3, 4}},
		{"APISECRET-appr-0123456789ab", "approver", []int{7}},
		{"APISECRET-alldep-0123456789", "alldep", []int{2, 3, 4, 5}},
		{"APISECRET-allapp-0123456789", "allapp", []int{0, 1, 6, 7, 8}},
	}
	for _, tt := range tests {
		p, ok := c.APIAuth(tt.token)
		if !ok || p.Name != tt.name {
			t.Fatalf("APIAuth(%s's token) = %q, %v", tt.name, p.Name, ok)
		}
		for i, ch := range checks {
			if got, want := p.Can(ch.verb, ch.env), slices.Contains(tt.can, i); got != want {
				t.Errorf("%s.Can(%q, %q) = %v", p.Name, ch.verb, ch.env, got)
			}
		}
	}
	if (Principal{Name: "nobody"}).Can(VerbRead, "") {
		t.Error("a Principal without scopes can read")
	}
}

func TestScope(t *testing.T) {
	tests := []struct {
		verb Verb
		env  string
		want string
	}{
		{VerbRead, "", "read"},
		{VerbRead, "production", "read"},
		{VerbDeploy, "production", "deploy:production"},
		{VerbApprove, "staging", "approve:staging"},
		{VerbDeploy, "", "deploy:*"},
		{VerbApprove, "", "approve:*"},
		{Verb("delete"), "production", "admin"},
	}
	c := mustParse(t, head)
	for _, tt := range tests {
		got := Scope(tt.verb, tt.env)
		if got != tt.want {
			t.Errorf("Scope(%q, %q) = %q, want %q", tt.verb, tt.env, got, tt.want)
		}
		// The scope named is one the config accepts (for a configured
		// environment), and it grants what was asked.
		if tt.env != "" && tt.env != "production" && tt.env != "staging" {
			continue
		}
		p := c.parseScopes(newProblems(nil), "scopes", []string{got})
		if !p.Can(tt.verb, tt.env) {
			t.Errorf("a token with %q cannot %q in %q", got, tt.verb, tt.env)
		}
	}
}

func TestApproval(t *testing.T) {
	c := mustParse(t, hookHead+`environments:
  production: {approval: {required: true}}
  staging: {approval: {required: true, timeout: 90m}}
  qa: {approval: {required: false}}
  dev: {approval: {}}
api_tokens:
  - {name: lead, token: "${LEAD_TOKEN}", scopes: ["approve:*"]}
deployments:
  - {name: prod, image: acme/web, tags: [latest], environment: production}
  - {name: stg, image: acme/web, tags: [staging], environment: staging}
  - {name: qa, image: acme/web, tags: [qa], environment: qa}
  - {name: dev, image: acme/web, tags: [dev], environment: dev}
  - {name: none, image: acme/web, tags: [none]}
`)
	tests := []struct {
		deployment string
		required   bool
		timeout    time.Duration
	}{
		{"prod", true, 24 * time.Hour},
		{"stg", true, 90 * time.Minute},
		{"qa", false, 0},
		{"dev", false, 0},
		{"none", false, 0},
	}
	for _, tt := range tests {
		req, timeout := c.Approval(c.Deployment(tt.deployment))
		if req != tt.required || timeout != tt.timeout {
			t.Errorf("Approval(%s) = %v, %v; want %v, %v", tt.deployment, req, timeout, tt.required, tt.timeout)
		}
	}
	if req, timeout := c.Approval(nil); req || timeout != 0 {
		t.Errorf("Approval(nil) = %v, %v", req, timeout)
	}
	if a := c.Environments["production"].Approval; a.Timeout != DefaultApprovalTimeout {
		t.Errorf("production's approval after defaults: %+v", a)
	}
	// Defaults are filled once and revalidation keeps them.
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if req, timeout := c.Approval(c.Deployment("prod")); !req || timeout != 24*time.Hour {
		t.Errorf("after revalidation: %v, %v", req, timeout)
	}
	// A config built in code: timeout 0 is the default.
	d := Default()
	d.Environments = map[string]Environment{"production": {Approval: Approval{Required: true}}}
	d.APITokens = []APIToken{{Name: "lead", Token: leadToken, Scopes: []string{"admin"}}}
	d.Deployments = []Deployment{{Name: "web", Image: "acme/web", Tags: []string{"latest"}, Environment: "production"}}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	if req, timeout := d.Approval(d.Deployment("web")); !req || timeout != DefaultApprovalTimeout {
		t.Errorf("built in code: %v, %v", req, timeout)
	}
}

func TestAPIErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string // added to testEnv
		want []string          // each must appear in the error
	}{
		{"api_listen", head + "api_listen: localhost\n", nil, []string{`api_listen: want [host]:port, e.g. "127.0.0.1:8081"`}},
		{"api_listen no port", head + "api_listen: \"127.0.0.1:\"\n", nil, []string{`api_listen: want [host]:port`}},
		{"api_listen is listen", head + "listen: 127.0.0.1:8080\napi_listen: 127.0.0.1:8080\n", nil,
			[]string{"api_listen: is the same address as listen; leave it empty to serve the API on listen"}},
		{"api_listen is the default listen", head + "api_listen: \"127.0.0.1:8080\"\n", nil,
			[]string{"api_listen: is the same address as listen"}},
		{"api_listen is metrics_listen", head + "metrics_listen: 127.0.0.1:9100\napi_listen: 127.0.0.1:9100\n", nil,
			[]string{"api_listen: is the same address as metrics_listen"}},

		{"api_tokens not a list", head + "api_tokens: {name: ci}\n", nil, []string{"api_tokens: cannot unmarshal !!map into []deployments.APIToken"}},
		{"api_tokens of strings", head + "api_tokens: [\"${SECRET}\"]\n", nil,
			[]string{"api_tokens: cannot unmarshal !!str (value from ${VAR}) into deployments.APIToken (line 3)"}},
		{"api token unknown key", head + "api_tokens:\n  - name: ci\n    token: \"${CI_TOKEN}\"\n    scope: admin\n", nil,
			[]string{`api_tokens[0].scope: unknown key (line 6)`}},

		{"name", head + `api_tokens:
  - {token: "${CI_TOKEN}", scopes: [read]}
  - {name: "c", token: "${LEAD_TOKEN}", scopes: [read]}
  - {name: "-ci", token: "APISECRET-2-0123456789abcdef", scopes: [read]}
  - {name: "c i", token: "APISECRET-3-0123456789abcdef", scopes: [read]}
  - {name: "${SECRET}!", token: "APISECRET-4-0123456789abcdef", scopes: [read]}
`, nil, []string{"api_tokens[0].name: missing: who the token is", `api_tokens[1].name: invalid name "c": want [a-zA-Z0-9][a-zA-Z0-9_.-]+`,
			`api_tokens[2].name: invalid name "-ci"`, `api_tokens[3].name: invalid name "c i"`,
			"api_tokens[4].name: invalid name (value from ${VAR})"}},
		{"name duplicate", head + `api_tokens:
  - {name: ci, token: "${CI_TOKEN}", scopes: [read]}
  - {name: ci, token: "${LEAD_TOKEN}", scopes: [read]}
`, nil, []string{"api_tokens[1].name: duplicate of api_tokens[0]"}},

		{"token unset", head + "api_tokens: [{name: ci, token: \"${NOPE}\", scopes: [read]}]\n", nil,
			[]string{"api_tokens[0].token: ${NOPE} is not set"}},
		{"token missing", head + "api_tokens: [{name: ci, scopes: [read]}]\n", nil,
			[]string{"api_tokens[0].token: missing: use a long random secret"}},
		{"token short from a variable", head + "api_tokens: [{name: ci, token: \"${SHORT}\", scopes: [read]}]\n",
			map[string]string{"SHORT": "APISECRET-23-characters"}, []string{"api_tokens[0].token: too short: at least 24 characters"}},
		{"token short literal", head + "api_tokens: [{name: ci, token: APISECRET-lit, scopes: [read]}]\n", nil,
			[]string{"api_tokens[0].token: too short: at least 24 characters"}},
		{"token with a space", head + "api_tokens: [{name: ci, token: \"APISECRET 0123456789abcdefghij\", scopes: [read]}]\n", nil,
			[]string{`api_tokens[0].token: must be printable ASCII without spaces: it is sent as "Authorization: Bearer <token>"`}},
		{"token not ASCII", head + "api_tokens: [{name: ci, token: \"APISECRET-é-0123456789abcdefghij\", scopes: [read]}]\n", nil,
			[]string{"api_tokens[0].token: must be printable ASCII without spaces"}},
		{"token twice", head + `api_tokens:
  - {name: ci, token: "${CI_TOKEN}", scopes: [read]}
  - {name: ci2, token: "${CI_TOKEN}", scopes: [read]}
  - {name: ci3, token: "APISECRET-ci-0123456789abcdef", scopes: [read]}
`, nil, []string{"api_tokens[1].token: the same token as api_tokens[0].token: give each its own secret",
			"api_tokens[2].token: the same token as api_tokens[0].token"}},
		{"token of a hook", head + "api_tokens: [{name: ci, token: \"${HOOK_TOKEN}\", scopes: [read]}]\n", nil,
			[]string{"api_tokens[0].token: the same token as hooks[0].token: give each its own secret"}},

		{"no scopes", head + `api_tokens:
  - {name: ci, token: "${CI_TOKEN}"}
  - {name: lead, token: "${LEAD_TOKEN}", scopes: []}
`, nil, []string{"api_tokens[0].scopes: no scopes, so the token could do nothing: want read, admin, deploy:<env>, approve:<env>, logs:<env>, deploy:*, approve:* or logs:*, where <env> is one of production, staging",
			"api_tokens[1].scopes: no scopes"}},
		{"unknown scopes", head + `api_tokens:
  - name: ci
    token: "${CI_TOKEN}"
    scopes: [read, "depoy:staging", Read, write, "deploy", "deploy:", "read:production", "admin:*", "approve:prod", "deploy:${SECRET}", "${SECRET}"]
`, nil, []string{`api_tokens[0].scopes[1]: unknown scope "depoy:staging": want read, admin, deploy:<env>, approve:<env>, logs:<env>, deploy:*, approve:* or logs:*, where <env> is one of production, staging`,
			`api_tokens[0].scopes[2]: unknown scope "Read"`, `api_tokens[0].scopes[3]: unknown scope "write"`,
			`api_tokens[0].scopes[4]: unknown scope "deploy"`,
			`api_tokens[0].scopes[5]: "deploy:" names no environment: want read, admin`,
			`api_tokens[0].scopes[6]: "read:production": read is not per environment, write read alone`,
			`api_tokens[0].scopes[7]: "admin:*": admin is not per environment, write admin alone`,
			`api_tokens[0].scopes[8]: unknown environment "prod" in "approve:prod" (have: production, staging)`,
			`api_tokens[0].scopes[9]: unknown environment (value from ${VAR}) in (value from ${VAR}) (have: production, staging)`,
			`api_tokens[0].scopes[10]: unknown scope (value from ${VAR}): want`}},
		{"scopes without environments", `api_tokens: [{name: ci, token: "${CI_TOKEN}", scopes: ["deploy:staging", bogus]}]`, nil,
			[]string{`api_tokens[0].scopes[0]: unknown environment "staging" in "deploy:staging" (have: none)`,
				`api_tokens[0].scopes[1]: unknown scope "bogus": want read, admin, deploy:*, approve:* or logs:* (no environments are configured, so there is no deploy:<env>, approve:<env> or logs:<env>)`}},

		{"approval timeout without required", hookHead + `environments:
  production: {approval: {timeout: 1h}}
  staging: {approval: {required: false, timeout: 0s}}
`, nil, []string{"environments.production.approval.timeout: has no effect without required: true (pushes deploy without approval): set required: true, or remove timeout",
			"environments.staging.approval.timeout: has no effect without required: true"}},
		{"approval timeout not positive", hookHead + `api_tokens: [{name: lead, token: "${LEAD_TOKEN}", scopes: [admin]}]
environments:
  production: {approval: {required: true, timeout: 0s}}
  staging: {approval: {required: true, timeout: -1h}}
`, nil, []string{"environments.production.approval.timeout: must be positive, e.g. 24h: how long a push waits for its approval before it expires",
			"environments.staging.approval.timeout: must be positive"}},
		{"approval types", hookHead + `environments:
  production:
    approval:
      required: yes please
      timeout: 3600
      bogus: 1
  staging: {approval: true}
`, nil, []string{"environments.production.approval.required: cannot unmarshal !!str `yes please` into bool (line 5)",
			"environments.production.approval.timeout: cannot unmarshal !!int `3600` into time.Duration (line 6)",
			`environments.production.approval.bogus: unknown key (line 7)`,
			"environments.staging: cannot unmarshal !!bool `true` into deployments.Approval (line 8)"}},
		{"approval nobody can give", hookHead + `api_tokens:
  - {name: ci, token: "${CI_TOKEN}", scopes: ["deploy:*", "approve:staging", read]}
environments:
  production: {approval: {required: true}}
  staging: {approval: {required: true}}
`, nil, []string{"environments.production.approval.required: no api_tokens entry may approve (that takes approve:production, approve:* or admin), so every push to production would wait until it expires"}},
		{"approval without api_tokens", hookHead + "environments: {production: {approval: {required: true, timeout: 1h}}}\n", nil,
			[]string{"environments.production.approval.required: no api_tokens entry may approve"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := testEnv()
			for k, v := range tt.env {
				env[k] = v
			}
			_, err := Parse([]byte(tt.yaml), "testdata", lookupMap(env))
			if err == nil {
				t.Fatal("no error")
			}
			text := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in:\n%s", w, text)
				}
			}
			noLeak(t, text)
			for _, line := range strings.Split(text, "\n") {
				if !strings.HasPrefix(line, "api_") && !strings.HasPrefix(line, "environments.") {
					t.Errorf("error of another field: %q", line)
				}
			}
		})
	}
}

// The staging approval is fine: the ci token may approve it; and
// production's approver may be an admin.
func TestApprovalApprovers(t *testing.T) {
	for _, scopes := range []string{`["approve:production"]`, `["approve:*"]`, `[admin]`} {
		_, err := parseString(t, hookHead+"api_tokens: [{name: lead, token: \"${LEAD_TOKEN}\", scopes: "+scopes+"}]\n"+
			"environments: {production: {approval: {required: true}}, staging: {}}\n")
		if err != nil {
			t.Errorf("approver with %s: %v", scopes, err)
		}
	}
}
