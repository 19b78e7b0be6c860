package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
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
	repo, err := deployments.NormalizeRepo(name)
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

// duplicateKey finds the first key that appears twice in the top-level
// object of obj (valid JSON), or in its push_data or repository, and
// returns where (body, push_data or repository) and the key, quoted; it
// returns "", "" if there is none.
//
// encoding/json keeps the last of duplicate keys and matches keys without
// regard to case ("TAG" is tag, and "pu\u017Fh_data", with a long s, is
// push_data), whereas a proxy or an audit log in front of liftoff may read
// the first, or only the exact spelling. Two keys that encoding/json takes for
// the same are refused, so that no one can show them one tag and make
// liftoff deploy another.
func duplicateKey(obj []byte, where string) (string, string) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", ""
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", ""
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return "", ""
		}
		folded := foldKey(key)
		if seen[folded] {
			return where, truncate(strconv.Quote(key), 64)
		}
		seen[folded] = true
		if where == "body" && (folded == "push_data" || folded == "repository") {
			if w, k := duplicateKey(v, folded); k != "" {
				return w, k
			}
		}
	}
	return "", ""
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
