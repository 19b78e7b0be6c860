package deployments

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Verb is what a caller of the management API asks to do. Principal.Can
// tells whether its scopes allow it; Scope names the scope that would.
type Verb string

// The verbs of the management API.
const (
	// VerbRead is every GET: deployments, deploys, deliveries. It is not
	// per environment.
	VerbRead Verb = "read"
	// VerbDeploy is deploy, roll back, pause and resume a deployment.
	VerbDeploy Verb = "deploy"
	// VerbApprove is approve and reject the push that awaits approval.
	VerbApprove Verb = "approve"
	// VerbLogs is reading the whole output of a deploy's backup and
	// release commands, which may hold data (a pg_dump's rows) and is
	// not for every reader: read sees only that a step failed and why,
	// in one line.
	VerbLogs Verb = "logs"
)

// The scopes that are not per environment, and the environment of
// deploy:* and approve:*.
const (
	scopeRead      = "read"
	scopeAdmin     = "admin"
	anyEnvironment = "*"
)

// minTokenLen is the shortest hook or API token accepted.
const minTokenLen = 24

// Scope returns the scope that allows verb in environment, the one a 403
// names: "read", "deploy:production", "approve:staging". A deployment
// without an environment is reached only through deploy:* or approve:*
// (or admin), so Scope(VerbDeploy, "") is "deploy:*". A verb this package
// does not know needs admin.
func Scope(v Verb, environment string) string {
	switch v {
	case VerbRead:
		return scopeRead
	case VerbDeploy, VerbApprove, VerbLogs:
		if environment == "" {
			environment = anyEnvironment
		}
		return string(v) + ":" + environment
	}
	return scopeAdmin
}

// Principal is who an API token acts as: its Name (the actor recorded for
// what it does) and what its scopes allow. The zero Principal can do
// nothing.
type Principal struct {
	Name string

	scopes  []string // as configured, for Scopes
	admin   bool
	read    bool
	deploy  []string // environments; anyEnvironment for every one
	approve []string
	logs    []string
}

// Can tells whether the principal may do verb to a deployment of
// environment ("" for a deployment without one; ignored for VerbRead).
//
//   - admin allows everything;
//   - read allows VerbRead, and only it;
//   - deploy:<env> allows VerbDeploy, approve:<env> VerbApprove and
//     logs:<env> VerbLogs in that environment; deploy:*, approve:* and
//     logs:* in every environment, and for deployments without one.
//
// deploy and approve scopes do not imply read: a token that also looks
// (the GETs, `liftoff status`, `liftoff deploy --wait`) needs read as well.
func (p Principal) Can(verb Verb, environment string) bool {
	if p.admin {
		return true
	}
	switch verb {
	case VerbRead:
		return p.read
	case VerbDeploy:
		return allows(p.deploy, environment)
	case VerbApprove:
		return allows(p.approve, environment)
	case VerbLogs:
		return allows(p.logs, environment)
	}
	return false
}

func allows(envs []string, environment string) bool {
	for _, e := range envs {
		if e == anyEnvironment || (e == environment && environment != "") {
			return true
		}
	}
	return false
}

// Scopes returns the principal's scopes as the config lists them, for
// display.
func (p Principal) Scopes() []string { return slices.Clone(p.scopes) }

// apiKey is an API token as APIAuth needs it: the hash of the token (for
// the same reasons as hookSum) and who the token acts as.
type apiKey struct {
	sum       [sha256.Size]byte
	principal Principal
}

// APIEnabled tells whether any API token is configured. Without one the
// management API is off.
func (c *Config) APIEnabled() bool { return len(c.apiKeys) > 0 }

// APIAuth returns who token acts as, in constant time: it hashes token
// once and compares the hash with that of every API token, without
// stopping at a match, so neither a near miss nor the position of the
// matching token answers faster. An empty token never matches.
func (c *Config) APIAuth(token string) (Principal, bool) {
	if token == "" {
		return Principal{}, false
	}
	return c.APIAuthSum(sha256.Sum256([]byte(token)))
}

// APIAuthSum is APIAuth for a token known by its SHA-256 sum, which is what
// a session of the status page keeps instead of the token: each request
// finds the principal in the config in force, so a reload that drops or
// changes the token takes effect at once.
func (c *Config) APIAuthSum(sum [sha256.Size]byte) (Principal, bool) {
	found, at := 0, 0
	for i := range c.apiKeys {
		eq := subtle.ConstantTimeCompare(c.apiKeys[i].sum[:], sum[:])
		found |= eq
		at = subtle.ConstantTimeSelect(eq, i, at)
	}
	// Tokens are unique, so at most one matched.
	if found == 0 {
		return Principal{}, false
	}
	return c.apiKeys[at].principal, true
}

// validateAPITokens checks each API token's name, token and scopes, and
// prepares APIAuth: the hash of each token and its principal. Hooks must
// be validated before, environments too (scopes name them). Once the tokens
// are forgotten, the hashes taken at load are kept.
func (c *Config) validateAPITokens(p *problems) {
	keys := make([]apiKey, len(c.APITokens))
	names := map[string]int{}
	owner := map[[sha256.Size]byte]string{} // a token's hash → the field holding it
	if !c.tokensForgotten {
		for i, h := range c.Hooks {
			if h.Token != "" {
				owner[sha256.Sum256([]byte(h.Token))] = fmt.Sprintf("hooks[%d].token", i)
			}
		}
	}
	for i := range c.APITokens {
		t := &c.APITokens[i]
		tp := fmt.Sprintf("api_tokens[%d]", i)

		np := tp + ".name"
		switch {
		case t.Name == "":
			p.addf(np, "missing: who the token is; what it does is recorded under this name")
		case !validName(t.Name, 2):
			p.addf(np, "invalid name %s: want [a-zA-Z0-9][a-zA-Z0-9_.-]+", p.quote(np, t.Name))
		}
		if j, dup := names[t.Name]; dup && t.Name != "" {
			p.addf(np, "duplicate of api_tokens[%d]", j)
		} else if t.Name != "" {
			names[t.Name] = i
		}

		keys[i].principal = c.parseScopes(p, tp+".scopes", t.Scopes)
		keys[i].principal.Name = t.Name

		if c.tokensForgotten {
			if i < len(c.apiKeys) {
				keys[i].sum = c.apiKeys[i].sum // validated when loaded; only the hashes remain
			}
			continue
		}
		kp := tp + ".token"
		if !checkAPIToken(p, kp, t.Token) {
			continue
		}
		keys[i].sum = sha256.Sum256([]byte(t.Token))
		if other, dup := owner[keys[i].sum]; dup {
			p.addf(kp, "the same token as %s: give each its own secret", other)
		} else {
			owner[keys[i].sum] = kp
		}
	}
	c.apiKeys = keys
}

// checkAPIToken checks an API token without ever showing it, not even in
// part, and tells whether it is usable.
func checkAPIToken(p *problems, at, token string) bool {
	switch {
	case token == "":
		p.addf(at, "missing: use a long random secret from liftoff's environment, e.g. ${LIFTOFF_CI_TOKEN} set to `openssl rand -hex 24`")
	case len(token) < minTokenLen:
		p.addf(at, "too short: at least %d characters, e.g. from `openssl rand -hex 24`", minTokenLen)
	case !bearerSafe(token):
		p.addf(at, "must be printable ASCII without spaces: it is sent as \"Authorization: Bearer <token>\"")
	default:
		return true
	}
	return false
}

func bearerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f {
			return false
		}
	}
	return true
}

// parseScopes checks the scopes of one token and returns what they allow.
func (c *Config) parseScopes(p *problems, at string, scopes []string) Principal {
	pr := Principal{scopes: slices.Clone(scopes)}
	if len(scopes) == 0 {
		p.addf(at, "no scopes, so the token could do nothing: %s", c.allowedScopes())
	}
	for j, s := range scopes {
		sp := fmt.Sprintf("%s[%d]", at, j)
		verb, env, perEnv := strings.Cut(s, ":")
		switch {
		case s == scopeAdmin:
			pr.admin = true
		case s == scopeRead:
			pr.read = true
		case perEnv && (verb == scopeRead || verb == scopeAdmin):
			p.addf(sp, "%s: %s is not per environment, write %s alone", p.quote(sp, s), verb, verb)
		case perEnv && (verb == string(VerbDeploy) || verb == string(VerbApprove) || verb == string(VerbLogs)):
			if env == "" {
				p.addf(sp, "%s names no environment: %s", p.quote(sp, s), c.allowedScopes())
				continue
			}
			if _, ok := c.Environments[env]; !ok && env != anyEnvironment {
				p.addf(sp, "unknown environment %s in %s (have: %s)", p.quote(sp, env), p.quote(sp, s), c.environmentNames())
				continue
			}
			switch Verb(verb) {
			case VerbDeploy:
				pr.deploy = append(pr.deploy, env)
			case VerbApprove:
				pr.approve = append(pr.approve, env)
			default:
				pr.logs = append(pr.logs, env)
			}
		default:
			p.addf(sp, "unknown scope %s: %s", p.quote(sp, s), c.allowedScopes())
		}
	}
	return pr
}

// allowedScopes says which scopes this config accepts.
func (c *Config) allowedScopes() string {
	if len(c.Environments) == 0 {
		return "want read, admin, deploy:*, approve:* or logs:* (no environments are configured, so there is no deploy:<env>, approve:<env> or logs:<env>)"
	}
	return "want read, admin, deploy:<env>, approve:<env>, logs:<env>, deploy:*, approve:* or logs:*, where <env> is one of " + c.environmentNames()
}

func (c *Config) environmentNames() string {
	if len(c.Environments) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(c.Environments)), ", ")
}

// checkApprovers refuses an environment that requires approval when no API
// token may approve: its pushes would only ever expire.
func (c *Config) checkApprovers(p *problems) {
	for _, name := range slices.Sorted(maps.Keys(c.Environments)) {
		if !c.Environments[name].Approval.Required {
			continue
		}
		approver := false
		for i := range c.apiKeys {
			approver = approver || c.apiKeys[i].principal.Can(VerbApprove, name)
		}
		if !approver {
			p.addf("environments."+name+".approval.required",
				"no api_tokens entry may approve (that takes %s, approve:* or admin), so every push to %s would wait until it expires",
				Scope(VerbApprove, name), name)
		}
	}
}
