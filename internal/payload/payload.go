// Package payload reads what each registry's webhook says was pushed.
//
// Each source has one parser, a pure function of the request's headers and
// body: DockerHub, GHCR, Distribution, Harbor, Quay, ECR, GAR and Generic (and
// DockerHubParser, DockerHub with a cache for a server's hot path). None
// of them does I/O, reads configuration or trusts a URL in the payload;
// each returns the tags that may deploy (Parsed.Pushes), the tags deleted
// (Parsed.Deleted), the events of
// the delivery that deploy nothing and why (Parsed.Skipped), or an error
// wrapping ErrInvalid that names the field at fault.
//
// Every parser reads JSON with the module that is becoming
// encoding/json/v2 (a fraction of encoding/json's time and allocations),
// set so that keys match fields as encoding/json matches them ("TAG" is
// tag), a key twice in one object is refused, and so are two keys for one
// field, so that a proxy or an audit log in front of liftoff, which may
// read the first of two keys or the other spelling, cannot be shown one
// tag while liftoff deploys another.
//
// VerifySignature checks the senders that sign; the configured
// Authorization header of the others is compared by the hook
// (deployments.HookCheck).
package payload

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// ErrInvalid marks a payload liftoff cannot read: the sender should be
// answered 400. Every parse error wraps it; its message names the field
// (events[3].target.tag) and quotes what the sender wrote only when that
// is a plain name.
var ErrInvalid = errors.New("invalid payload")

// Push is one tag pushed.
type Push struct {
	// Repo is normalized as imageref.NormalizeRepo does, registry host
	// included: ghcr.io/acme/web, docker.io/acme/web,
	// 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web.
	Repo string
	// Tag follows imageref.ValidateTag and is no signature or
	// attestation tag.
	Tag string
	// Digest is the sender's (sha256:<64 hex>), "" when it gives none. It
	// says what the sender saw, not what the registry serves: resolve the
	// tag before trusting it.
	Digest string
	// Pusher is shown, never trusted; at most 255 bytes.
	Pusher string
	// PushedAt is zero when the sender does not say.
	PushedAt time.Time
}

// Skip is an event of a delivery that deploys nothing, and why: untagged,
// a tag that is a digest, a signature tag, a pull, a blob, not a container
// package, a failed push...
type Skip struct {
	Tag    string // when the event names a tag that can be shown as is
	Reason string
}

// Parsed is one delivery read.
type Parsed struct {
	// Pushes holds each repository and tag once: a push that sends an
	// event per manifest (a multi-arch image) yields its tag once, with the
	// index's digest where the sender says which event is the index, else
	// the last event's.
	Pushes []Push
	// Deleted holds each repository and tag the delivery says was
	// deleted from the registry (Distribution and GAR send a tag's
	// delete): Digest, Pusher and PushedAt as a push's, when given. A
	// delete deploys nothing; the hook removes the previews of the tag.
	Deleted []Push
	Skipped []Skip
	// ID is the sender's own id of the delivery where it has one
	// (X-GitHub-Delivery, the CloudEvents id, EventBridge's id), for
	// recognizing a redelivery; "" otherwise.
	ID string
	// Ping is GitHub's ping on creating a webhook: answer 200, deploy
	// nothing.
	Ping bool
}

// maxList bounds every list of a payload (events, resources, tags): a
// real delivery holds a handful, and a 1 MiB body of empty objects must
// not become a hundred thousand events.
const maxList = 1000

// maxPusher bounds the pusher kept for logs and history.
const maxPusher = 255

// invalid returns an error wrapping ErrInvalid for the field at path.
func invalid(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, path, fmt.Sprintf(format, args...))
}

// plain quotes s for an error message or a skip reason when it is at most
// 128 of [A-Za-z0-9._/:@+ -], and returns "" otherwise: a sender's text
// is echoed back to it and into the log, where it must not pass for
// something else.
func plain(s string) string {
	if s == "" || len(s) > 128 {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-/:@+ ", c) >= 0) {
			return ""
		}
	}
	return strconv.Quote(s)
}

// shown is plain(s) preceded by a space, or "".
func shown(s string) string {
	if q := plain(s); q != "" {
		return " " + q
	}
	return ""
}

// repo normalizes name as imageref.NormalizeRepo does; path names the
// field it came from.
func repo(path, name string) (string, error) {
	return (*repoCache)(nil).repo(path, name)
}

// repo is the package's repo, remembered in c unless c is nil.
func (c *repoCache) repo(path, name string) (string, error) {
	if name == "" {
		return "", invalid(path, "missing")
	}
	r, err := c.normalize(name)
	if err != nil {
		if plain(name) == "" {
			return "", invalid(path, "not a valid repository name")
		}
		return "", invalid(path, "%v", err)
	}
	return r, nil
}

// host checks h, a registry host[:port] the payload gives, and
// lower-cases it: it must have a '.' or a ':', or be localhost, as Docker
// tells a host from a namespace, or "registry/web" would be read as
// docker.io/registry/web.
func host(path, h string) (string, error) {
	h = lowerASCII(h)
	name, port, hasPort := h, "", false
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		name, port, hasPort = h[:i], h[i+1:], true
	}
	switch {
	case h == "":
		return "", invalid(path, "missing")
	case name == "" || hasPort && (port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != ""),
		name != "localhost" && !strings.Contains(name, ".") && !hasPort,
		strings.ContainsAny(h, "/@?#\\"):
		return "", invalid(path, "want a registry host[:port]%s", shown(h))
	}
	return h, nil
}

// tag checks a tag that is to deploy. A tag that is a digest (an untagged
// artifact, as Harbor sends it) and a signature or attestation tag are
// skipped: skip is their reason. Any other tag outside the grammar is an
// error.
func tag(path, t string) (skip string, err error) {
	switch {
	case t == "":
		return "untagged: nothing to deploy by tag", nil
	case isDigest(t):
		return "untagged: the tag is a digest", nil
	}
	if err := imageref.ValidateTag(t); err != nil {
		if plain(t) == "" && len(t) <= 128 { // a longer one is not quoted
			return "", invalid(path, "invalid tag: want [A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
		}
		return "", invalid(path, "%v", err)
	}
	if imageref.IsSignatureTag(t) {
		return "signature or attestation tag", nil
	}
	return "", nil
}

// isDigest tells whether s looks like a digest (algorithm:encoded) rather
// than a tag, whatever its encoded part.
func isDigest(s string) bool {
	alg, _, ok := strings.Cut(s, ":")
	return ok && (alg == "sha256" || alg == "sha384" || alg == "sha512")
}

// digest checks a digest a sender gives: "" or sha256:<64 lowercase hex>.
func digest(path, d string) (string, error) {
	if d == "" {
		return "", nil
	}
	hex, ok := strings.CutPrefix(d, "sha256:")
	if ok && len(hex) == 64 && strings.Trim(hex, "0123456789abcdef") == "" {
		return d, nil
	}
	return "", invalid(path, "want sha256:<64 lowercase hex digits>")
}

// deliveryID checks the sender's id of a delivery: it is stored and
// compared, so it must be short and plain.
func deliveryID(path, id string) (string, error) {
	if len(id) > 128 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") != "" {
		return "", invalid(path, "want at most 128 of [A-Za-z0-9._:-]")
	}
	return id, nil
}

// pushes collects the pushes of one delivery, each repository and tag
// once.
type pushes struct {
	p     *Parsed
	index []bool // index[i]: Pushes[i] came from an image index
}

// add records p; an event for a repository and tag already seen replaces
// its digest, pusher and time, unless the earlier one was an image index
// and this one is not (the index is what a multi-arch tag names).
func (c *pushes) add(p Push, isIndex bool) {
	p.Pusher = truncate(p.Pusher, maxPusher)
	for i := range c.p.Pushes {
		if c.p.Pushes[i].Repo == p.Repo && c.p.Pushes[i].Tag == p.Tag {
			if isIndex || !c.index[i] {
				c.p.Pushes[i], c.index[i] = p, isIndex
			}
			return
		}
	}
	c.p.Pushes = append(c.p.Pushes, p)
	c.index = append(c.index, isIndex)
}

// deleted records a delete of p's tag, each repository and tag once.
func (c *pushes) deleted(p Push) {
	p.Pusher = truncate(p.Pusher, maxPusher)
	for _, q := range c.p.Deleted {
		if q.Repo == p.Repo && q.Tag == p.Tag {
			return
		}
	}
	c.p.Deleted = append(c.p.Deleted, p)
}

// tagged checks the tag and digest of an event: ok is false when the
// event deploys nothing, and c has recorded why, prefixed with where
// ("events[3]: ").
func (c *pushes) tagged(where, tagPath, t, digestPath, d string) (dg string, ok bool, err error) {
	skip, err := tag(tagPath, t)
	if err != nil {
		return "", false, err
	}
	if skip != "" {
		c.skip(t, where+skip)
		return "", false, nil
	}
	if dg, err = digest(digestPath, d); err != nil {
		return "", false, err
	}
	return dg, true, nil
}

// skip records an event that deploys nothing; t is kept when it is a
// valid tag, or a digest in its place.
func (c *pushes) skip(t, reason string) {
	if imageref.ValidateTag(t) != nil && (!isDigest(t) || plain(t) == "") {
		t = ""
	}
	c.p.Skipped = append(c.p.Skipped, Skip{Tag: t, Reason: reason})
}

// unixTime converts unix seconds, whole or not (Docker Hub's older
// deliveries say 1.417566161e+09); nonsense (≤0, or past year 5000) is
// unknown.
func unixTime(sec float64) time.Time {
	if sec <= 0 || sec > 95617584000 {
		return time.Time{}
	}
	whole := int64(sec)
	return time.Unix(whole, int64((sec-float64(whole))*1e9)).UTC()
}

// rfc3339 parses a sender's timestamp, which is only shown: one it gets
// wrong, or the zero time some senders put there, is unknown rather than
// an error.
func rfc3339(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 2000 || t.Year() > 5000 {
		return time.Time{}
	}
	return t.UTC()
}

// lowerASCII lower-cases the ASCII letters of s and nothing else:
// strings.ToLower would also map the Kelvin sign to k, making a name the
// sender did not write.
func lowerASCII(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' }) < 0 {
		return s
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
