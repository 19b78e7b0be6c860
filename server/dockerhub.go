package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/liftoff-deploy/liftoff/deployments"
)

// dockerHubPayload holds the fields of a DockerHub delivery that liftoff
// reads; the others (callback_url, images, full_description, ...) are
// ignored. callback_url in particular is never called.
type dockerHubPayload struct {
	PushData struct {
		Tag    string `json:"tag"`
		Pusher string `json:"pusher"`
		// PushedAt is unix seconds: an integer today, a float such as
		// 1.417566161e+09 in older deliveries.
		PushedAt float64 `json:"pushed_at"`
	} `json:"push_data"`
	Repository struct {
		RepoName  string `json:"repo_name"` // "acme/web", "library/nginx" or "nginx"
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"repository"`
}

// maxPusher bounds the pusher kept for logs and history.
const maxPusher = 255

// parseDockerHub reads a DockerHub push payload.
func parseDockerHub(body []byte) (push, error) {
	return parseDockerHubWith(body, deployments.NormalizeRepo)
}

// parseDockerHubWith is parseDockerHub with normalize for
// deployments.NormalizeRepo (a repoCache's, in a Server).
func parseDockerHubWith(body []byte, normalize func(string) (string, error)) (push, error) {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return push{}, fmt.Errorf("%w: body: want a JSON object", errInvalid)
	}
	var pl dockerHubPayload
	if err := json.Unmarshal(body, &pl); err != nil {
		return push{}, jsonError(err)
	}
	if where, key := duplicateKey(body, "body"); key != "" {
		return push{}, fmt.Errorf("%w: %s: duplicate key %s", errInvalid, where, key)
	}

	name := pl.Repository.RepoName
	if name == "" && pl.Repository.Name != "" {
		name = pl.Repository.Name
		if pl.Repository.Namespace != "" {
			name = pl.Repository.Namespace + "/" + name
		}
	}
	if name == "" {
		return push{}, fmt.Errorf("%w: repository.repo_name: missing", errInvalid)
	}
	repo, err := normalize(name)
	if err != nil {
		return push{}, fmt.Errorf("%w: repository.repo_name: %v", errInvalid, err)
	}
	// The hook's token vouches for DockerHub, so it may only move images of
	// Docker Hub, whatever host the payload names.
	if !strings.HasPrefix(repo, "docker.io/") {
		return push{}, fmt.Errorf("%w: repository.repo_name: %q is not on Docker Hub", errInvalid, truncate(name, 64))
	}

	tag := pl.PushData.Tag
	if tag == "" {
		return push{}, fmt.Errorf("%w: push_data.tag: missing", errInvalid)
	}
	if err := deployments.ValidateTag(tag); err != nil {
		return push{}, fmt.Errorf("%w: push_data.tag: %v", errInvalid, err)
	}

	return push{
		Repo:     repo,
		Tag:      tag,
		Pusher:   truncate(pl.PushData.Pusher, maxPusher),
		PushedAt: unixTime(pl.PushData.PushedAt),
	}, nil
}

// repoCache remembers the repositories of recent deliveries as
// deployments.NormalizeRepo normalizes them: the same few come again and
// again, and NormalizeRepo (a regular expression, nine allocations) costs
// more than the rest of the payload's checks. It holds at most
// len(slots) names, so that deliveries of ever new names cannot grow it;
// each slot is one atomic pointer, so it takes no lock.
type repoCache struct {
	seed  maphash.Seed
	slots [64]atomic.Pointer[repoEntry]
}

type repoEntry struct{ name, repo string }

func newRepoCache() *repoCache { return &repoCache{seed: maphash.MakeSeed()} }

// normalize is deployments.NormalizeRepo, remembered. Errors are not
// remembered: they are rare, and cost what they cost.
func (c *repoCache) normalize(name string) (string, error) {
	slot := &c.slots[maphash.String(c.seed, name)%uint64(len(c.slots))]
	if e := slot.Load(); e != nil && e.name == name {
		return e.repo, nil
	}
	repo, err := deployments.NormalizeRepo(name)
	if err == nil {
		slot.Store(&repoEntry{name: name, repo: repo})
	}
	return repo, err
}

// duplicateKey finds the first key that appears twice in the top-level
// object of obj, or in its push_data or repository, and returns where
// (body, push_data or repository) and the key, quoted; it returns "", ""
// if there is none. obj must be valid JSON (json.Unmarshal took it); on
// anything else it returns "", "" too.
//
// encoding/json keeps the last of duplicate keys and matches keys without
// regard to case ("TAG" is tag, and "pu\u017Fh_data", with a long s, is
// push_data), whereas a proxy or an audit log in front of liftoff may read
// the first, or only the exact spelling. Two keys that encoding/json takes for
// the same are refused, so that no one can show them one tag and make
// liftoff deploy another.
//
// It scans the bytes itself rather than through json.Decoder's tokens,
// which cost more than the rest of a delivery together; in the common case
// (keys in lower-case ASCII, a few dozen of them) it allocates nothing.
func duplicateKey(obj []byte, where string) (string, string) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return "", ""
	}
	var seen keySet
	for i = skipSpace(obj, i+1); i < len(obj) && obj[i] == '"'; {
		end := stringEnd(obj, i)
		if end < 0 {
			return "", ""
		}
		raw := obj[i:end]
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return "", ""
		}
		start := skipSpace(obj, i+1)
		i = valueEnd(obj, start)
		if i < 0 {
			return "", ""
		}
		folded := foldedKey(raw)
		if seen.add(folded) {
			var key string
			json.Unmarshal(raw, &key) // as encoding/json reads it
			return where, truncate(strconv.Quote(key), 64)
		}
		if where == "body" {
			sub := ""
			switch {
			case string(folded) == "push_data":
				sub = "push_data"
			case string(folded) == "repository":
				sub = "repository"
			}
			if sub != "" {
				if w, k := duplicateKey(obj[start:i], sub); k != "" {
					return w, k
				}
			}
		}
		if i = skipSpace(obj, i); i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return "", ""
}

// keySet is the folded keys of one object seen so far: a few in an array,
// more in a map.
type keySet struct {
	small [32][]byte
	n     int
	big   map[string]struct{}
}

// add adds k and tells whether it was there already.
func (s *keySet) add(k []byte) bool {
	if s.big == nil {
		for _, o := range s.small[:s.n] {
			if bytes.Equal(o, k) {
				return true
			}
		}
		if s.n < len(s.small) {
			s.small[s.n] = k
			s.n++
			return false
		}
		s.big = make(map[string]struct{}, 2*len(s.small))
		for _, o := range s.small {
			s.big[string(o)] = struct{}{}
		}
	}
	if _, ok := s.big[string(k)]; ok {
		return true
	}
	s.big[string(k)] = struct{}{}
	return false
}

// foldedKey is foldKey of the JSON string raw (quotes included), decoded
// as encoding/json decodes it. A key of lower-case ASCII without escapes,
// the common case, is its own fold: that is returned without a copy.
func foldedKey(raw []byte) []byte {
	in := raw[1 : len(raw)-1]
	plain := true
	for _, c := range in {
		if c >= utf8.RuneSelf || c == '\\' || 'A' <= c && c <= 'Z' {
			plain = false
			break
		}
	}
	if plain {
		return in
	}
	var key string
	if bytes.IndexByte(in, '\\') < 0 {
		key = string(in)
	} else if err := json.Unmarshal(raw, &key); err != nil {
		key = string(in)
	}
	return []byte(foldKey(key))
}

// skipSpace returns the index of the first byte of b at or after i that is
// not JSON whitespace, or len(b).
func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the JSON string that begins at
// b[i] (a quote), or -1.
func stringEnd(b []byte, i int) int {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		escapes := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			escapes++
		}
		if escapes%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// valueEnd returns the index just past the JSON value that begins at b[i],
// or -1.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				if i = stringEnd(b, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	default: // a number, true, false or null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
			i++
		}
		return i
	}
}

// foldKey maps keys that encoding/json matches to one another (it compares
// them as bytes.EqualFold does) to the same string.
func foldKey(k string) string {
	return strings.Map(func(r rune) rune {
		// The smallest rune of r's fold set, lowercased so that the
		// names above read naturally.
		for {
			next := unicode.SimpleFold(r)
			if next <= r {
				return unicode.ToLower(next)
			}
			r = next
		}
	}, k)
}

// jsonError explains a decoding error in terms of the payload's fields.
func jsonError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return fmt.Errorf("%w: %s: want %s, got %s", errInvalid, field, jsonKind(typeErr.Type), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Errorf("%w: malformed JSON at byte %d: %v", errInvalid, syntaxErr.Offset, err)
	default:
		return fmt.Errorf("%w: malformed JSON: %v", errInvalid, err)
	}
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int64:
		return "number"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Bool:
		return "boolean"
	}
	return t.String()
}

// unixTime converts pushed_at; nonsense (≤0, or past year 5000) is unknown.
func unixTime(sec float64) time.Time {
	if sec <= 0 || sec > 95617584000 {
		return time.Time{}
	}
	whole := int64(sec)
	return time.Unix(whole, int64((sec-float64(whole))*1e9)).UTC()
}

// truncate cuts s to at most max bytes without splitting a character.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
