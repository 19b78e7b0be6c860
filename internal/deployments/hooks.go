package deployments

import (
	"crypto/sha256"
	"crypto/subtle"
)

// SourceDockerHub is the source of Docker Hub's webhooks: POST
// /hooks/dockerhub/{token}.
const SourceDockerHub = "dockerhub"

// HookSources returns the webhook sources liftoff serves, the values
// hooks[].source accepts. The server has a payload parser for each of them
// and for no other.
func HookSources() []string { return []string{SourceDockerHub} }

// laterSources are sources liftoff does not serve yet: hooks[].source
// refuses them as "not supported yet" rather than as unknown.
var laterSources = []string{"distribution", "ghcr", "harbor", "quay", "generic"}

// hookSum is a hook as HookAuth needs it: the hash of its token. Comparing
// fixed-size hashes keeps the comparison constant-time whatever the
// length of the token tried (subtle.ConstantTimeCompare returns early on
// a length mismatch), and the plain token stays out of the auth path.
type hookSum struct {
	source string
	sum    [sha256.Size]byte
}

// hashTokens takes the hash of each hook token, for HookAuth. Once the
// tokens are forgotten the hashes taken at load are kept.
func (c *Config) hashTokens() {
	if c.tokensForgotten {
		return
	}
	c.hookSums = make([]hookSum, 0, len(c.Hooks))
	for _, h := range c.Hooks {
		c.hookSums = append(c.hookSums, hookSum{source: h.Source, sum: sha256.Sum256([]byte(h.Token))})
	}
}

// forgetTokens drops the plain hook and API tokens once their hashes are
// taken (hashTokens, validateAPITokens), so that a loaded config keeps
// only hashes in memory (and no dump, log or debugger shows the tokens). A
// reload reads them from the file again.
func (c *Config) forgetTokens() {
	for i := range c.Hooks {
		c.Hooks[i].Token = ""
	}
	for i := range c.APITokens {
		c.APITokens[i].Token = ""
	}
	c.tokensForgotten = true
}

// HookAuth tells, in constant time, whether token is the token of a hook of
// that source. It compares against every hook, so neither an unknown
// source nor a near-miss token answers faster.
func (c *Config) HookAuth(source, token string) bool {
	sum := sha256.Sum256([]byte(token))
	ok := 0
	for i := range c.hookSums {
		h := &c.hookSums[i]
		ok |= subtle.ConstantTimeCompare([]byte(h.source), []byte(source)) &
			subtle.ConstantTimeCompare(h.sum[:], sum[:])
	}
	return ok == 1
}
