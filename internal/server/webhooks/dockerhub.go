package webhooks

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
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

// hubJSON reads a payload as encoding/json does, but for duplicate keys:
// keys match fields without regard to case, as strings.EqualFold does
// ("TAG" and "Tag" are tag, "pushdata" is not push_data), so that two of
// them for one field are duplicates; and invalid UTF-8 becomes U+FFFD,
// after which a tag or a repository fails its grammar while a pusher's
// name, which is only shown, is kept.
var hubJSON = json.JoinOptions(
	json.MatchCaseInsensitiveNames(true),
	jsonv1.MatchCaseSensitiveDelimiter(true),
	jsontext.AllowInvalidUTF8(true),
)

// maxPusher bounds the pusher kept for logs and history.
const maxPusher = 255

// parseDockerHub reads a DockerHub push payload.
func parseDockerHub(body []byte) (push, error) {
	return parseDockerHubWith(body, deployments.NormalizeRepo)
}

// parseDockerHubWith is parseDockerHub with normalize for
// deployments.NormalizeRepo (a repoCache's, in a Handler).
func parseDockerHubWith(body []byte, normalize func(string) (string, error)) (push, error) {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return push{}, fmt.Errorf("%w: body: want a JSON object", httperr.ErrInvalid)
	}
	// json is the module that is becoming encoding/json/v2: four times as
	// fast as encoding/json here, with one allocation instead of 22 (the
	// webhook's acknowledgement is measured against a bare handler's), and
	// it refuses a key twice in one object. With hubJSON it matches keys as
	// encoding/json does ("TAG" is tag) and refuses two keys that match the
	// same field: a proxy or an audit log in front of liftoff, which may
	// read the first of two keys, or the last of two spellings, cannot be
	// shown one tag while liftoff deploys another.
	var pl dockerHubPayload
	if err := json.Unmarshal(body, &pl, hubJSON); err != nil {
		return push{}, jsonError(err)
	}

	name := pl.Repository.RepoName
	if name == "" && pl.Repository.Name != "" {
		name = pl.Repository.Name
		if pl.Repository.Namespace != "" {
			name = pl.Repository.Namespace + "/" + name
		}
	}
	if name == "" {
		return push{}, fmt.Errorf("%w: repository.repo_name: missing", httperr.ErrInvalid)
	}
	repo, err := normalize(name)
	if err != nil {
		return push{}, fmt.Errorf("%w: repository.repo_name: %v", httperr.ErrInvalid, err)
	}
	// The hook's token vouches for DockerHub, so it may only move images of
	// Docker Hub, whatever host the payload names.
	if !strings.HasPrefix(repo, "docker.io/") {
		return push{}, fmt.Errorf("%w: repository.repo_name: %q is not on Docker Hub", httperr.ErrInvalid, truncate(name, 64))
	}

	tag := pl.PushData.Tag
	if tag == "" {
		return push{}, fmt.Errorf("%w: push_data.tag: missing", httperr.ErrInvalid)
	}
	if err := deployments.ValidateTag(tag); err != nil {
		return push{}, fmt.Errorf("%w: push_data.tag: %v", httperr.ErrInvalid, err)
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

// jsonError explains a decoding error in terms of the payload's fields.
func jsonError(err error) error {
	var semErr *json.SemanticError
	var synErr *jsontext.SyntacticError
	switch {
	case errors.As(err, &synErr) && errors.Is(synErr.Err, jsontext.ErrDuplicateName):
		return fmt.Errorf("%w: %s: duplicate key %s", httperr.ErrInvalid, fieldPath(synErr.JSONPointer.Parent()),
			truncate(strconv.Quote(synErr.JSONPointer.LastToken()), 64))
	case errors.As(err, &synErr):
		return fmt.Errorf("%w: malformed JSON at byte %d: %v", httperr.ErrInvalid, synErr.ByteOffset, synErr.Err)
	case errors.As(err, &semErr):
		want, got := jsonKind(semErr.GoType), kindName(semErr.JSONKind)
		if want == got && semErr.Err != nil { // the right kind, a wrong value: 1e400
			return fmt.Errorf("%w: %s: %v", httperr.ErrInvalid, fieldPath(semErr.JSONPointer), semErr.Err)
		}
		return fmt.Errorf("%w: %s: want %s, got %s", httperr.ErrInvalid, fieldPath(semErr.JSONPointer), want, got)
	default:
		return fmt.Errorf("%w: malformed JSON: %v", httperr.ErrInvalid, err)
	}
}

// fieldPath writes a JSON pointer (/push_data/tag) as the field it names
// (push_data.tag); the top-level object is "body". A sender's names are
// echoed back to it and into the log: each is cut to 64 bytes and quoted
// unless it is a plain name ([A-Za-z0-9_-]), and the path is cut to 256.
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for name := range p.Tokens() {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		name = truncate(name, 64)
		if strings.ContainsFunc(name, func(r rune) bool {
			return !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
		}) || name == "" {
			name = strconv.Quote(name)
		}
		b.WriteString(name)
		if b.Len() > 256 {
			break
		}
	}
	if b.Len() == 0 {
		return "body"
	}
	return truncate(b.String(), 256)
}

// kindName names the kind of a JSON value, as jsonKind names Go's.
func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "another value"
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
