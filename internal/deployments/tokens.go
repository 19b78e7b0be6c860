package deployments

import (
	"crypto/sha256"
	"crypto/subtle"
)

// IsToken tells whether v is one of the config's tokens: a hook's (of any
// source) or an API token. It compares SHA-256 sums with every one, in
// constant time, without stopping at a match. The HTTP side refuses such a
// value where a client sends a tag or a name, so that a token pasted into
// the wrong field is neither echoed, logged nor recorded.
func (c *Config) IsToken(v string) bool {
	if v == "" {
		return false
	}
	sum := sha256.Sum256([]byte(v))
	found := 0
	for i := range c.hookSums {
		found |= subtle.ConstantTimeCompare(c.hookSums[i].sum[:], sum[:])
	}
	for i := range c.apiKeys {
		found |= subtle.ConstantTimeCompare(c.apiKeys[i].sum[:], sum[:])
	}
	return found == 1
}
