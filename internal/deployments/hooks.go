package deployments

import (
	"crypto/sha256"
	"crypto/subtle"
	"slices"
)

// The webhook sources: POST /hooks/{source}/{token}.
const (
	SourceDockerHub    = "dockerhub"    // Docker Hub's repository webhooks
	SourceGHCR         = "ghcr"         // GitHub's package and registry_package events
	SourceDistribution = "distribution" // CNCF distribution registry notifications (GitLab's too)
	SourceHarbor       = "harbor"       // Harbor, default and CloudEvents formats
	SourceQuay         = "quay"         // Quay's repo_push notifications
	SourceECR          = "ecr"          // Amazon ECR through an EventBridge API destination
	SourceGAR          = "gar"          // Google Artifact Registry through a Pub/Sub push subscription
	SourceGeneric      = "generic"      // liftoff's own {"image", "tag", "digest"}, signed
)

// HookSources returns the webhook sources liftoff serves, the values
// hooks[].source accepts. The server has a payload parser for each of them
// and for no other.
func HookSources() []string {
	return []string{SourceDockerHub, SourceGHCR, SourceDistribution, SourceHarbor, SourceQuay, SourceECR, SourceGAR, SourceGeneric}
}

// signedSources sign each body with the hook's secret, which they need;
// authHeaderSources can send a static Authorization header, which they
// may be given. The others have only the token in the URL.
var (
	signedSources     = []string{SourceGHCR, SourceGeneric}
	authHeaderSources = []string{SourceDistribution, SourceHarbor, SourceECR}
)

// SignedSource tells whether a source's deliveries are signed with the
// hook's secret.
func SignedSource(source string) bool { return slices.Contains(signedSources, source) }

// hookSum is a hook as HookFor needs it: the hash of its token, and what
// vouches for a delivery beyond it. Comparing fixed-size hashes keeps the
// comparison constant-time whatever the length of the token tried
// (subtle.ConstantTimeCompare returns early on a length mismatch), and the
// plain token stays out of the auth path.
type hookSum struct {
	source string
	sum    [sha256.Size]byte
	check  HookCheck
}

// HookCheck is what a hook requires of a delivery once its token matched:
// a body signed with its secret, or an Authorization header.
type HookCheck struct {
	secret  []byte
	auth    [sha256.Size]byte
	hasAuth bool
}

// Secret is the key the sender signs bodies with, nil if the source does
// not sign. Never log it.
func (h HookCheck) Secret() []byte { return h.secret }

// AuthOK tells, in constant time, whether header is the Authorization
// header the hook requires; true when it requires none.
func (h HookCheck) AuthOK(header string) bool {
	if !h.hasAuth {
		return true
	}
	sum := sha256.Sum256([]byte(header))
	return subtle.ConstantTimeCompare(h.auth[:], sum[:]) == 1
}

// hashTokens takes the hash of each hook token, for HookFor, and keeps its
// secret and the hash of its auth_header. Once the tokens are forgotten
// what was taken at load is kept.
func (c *Config) hashTokens() {
	if c.tokensForgotten {
		return
	}
	c.hookSums = make([]hookSum, 0, len(c.Hooks))
	for _, h := range c.Hooks {
		hs := hookSum{source: h.Source, sum: sha256.Sum256([]byte(h.Token))}
		if h.Secret != "" {
			hs.check.secret = []byte(h.Secret)
		}
		if h.AuthHeader != "" {
			hs.check.auth, hs.check.hasAuth = sha256.Sum256([]byte(h.AuthHeader)), true
		}
		c.hookSums = append(c.hookSums, hs)
	}
}

// forgetTokens drops the plain hook and API tokens, hook secrets and auth
// headers once they are taken (hashTokens, validateAPITokens), so that the
// config's fields hold none of them (and no dump or log of it shows one).
// A reload reads them from the file again.
func (c *Config) forgetTokens() {
	for i := range c.Hooks {
		c.Hooks[i].Token, c.Hooks[i].Secret, c.Hooks[i].AuthHeader = "", "", ""
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
	_, ok := c.HookFor(source, token)
	return ok
}

// HookFor is HookAuth that also returns what the hook requires of the
// delivery beyond its token.
func (c *Config) HookFor(source, token string) (HookCheck, bool) {
	sum := sha256.Sum256([]byte(token))
	var found HookCheck
	ok := 0
	for i := range c.hookSums {
		h := &c.hookSums[i]
		m := subtle.ConstantTimeCompare([]byte(h.source), []byte(source)) &
			subtle.ConstantTimeCompare(h.sum[:], sum[:])
		if m == 1 {
			found = h.check
		}
		ok |= m
	}
	return found, ok == 1
}
