package payload

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// senderJSON reads a sender's payload as encoding/json would, but for
// duplicate keys: keys match fields as strings.EqualFold does ("TAG" is
// tag, "image_tag" is not image-tag), so two of them for one field are
// duplicates; unknown keys are ignored; invalid UTF-8 becomes U+FFFD,
// after which a tag or a repository fails its grammar.
var senderJSON = json.JoinOptions(
	json.MatchCaseInsensitiveNames(true),
	jsonv1.MatchCaseSensitiveDelimiter(true),
	jsontext.AllowInvalidUTF8(true),
)

// ownJSON is senderJSON for liftoff's own format, which also refuses
// unknown keys: a "tags" for "tag" is a mistake to report, not to ignore.
var ownJSON = json.JoinOptions(senderJSON, json.RejectUnknownMembers(true))

// read checks the request's Content-Type (application/json or one of
// media) and decodes its body into a new T.
func read[T any](h http.Header, body []byte, opts json.Options, media ...string) (*T, error) {
	if err := contentType(h, media...); err != nil {
		return nil, err
	}
	v := new(T)
	if err := decode(body, v, opts); err != nil {
		return nil, err
	}
	return v, nil
}

// decode reads body, a JSON object, into v.
func decode(body []byte, v any, opts json.Options) error {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return invalid("body", "want a JSON object")
	}
	if err := json.Unmarshal(body, v, opts); err != nil {
		return jsonError(err)
	}
	return nil
}

// errTooMany is what a list says when it is longer than maxList.
var errTooMany = fmt.Errorf("more than %d entries: at most %d are read", maxList, maxList)

// list is a JSON array of at most maxList elements, refused as soon as the
// next would pass the bound rather than once all are decoded.
type list[T any] []T

func (l *list[T]) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch k := dec.PeekKind(); k {
	case 'n':
		_, err := dec.ReadToken()
		*l = nil
		return err
	case '[':
	default:
		return &json.SemanticError{JSONKind: k, GoType: reflect.TypeFor[list[T]]()}
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	out := (*l)[:0]
	for dec.PeekKind() != ']' {
		if len(out) == maxList {
			return &json.SemanticError{JSONKind: '[', GoType: reflect.TypeFor[list[T]](), Err: errTooMany}
		}
		var v T
		if err := json.UnmarshalDecode(dec, &v); err != nil {
			return err
		}
		out = append(out, v)
	}
	*l = out
	_, err := dec.ReadToken()
	return err
}

// jsonError explains a decoding error in terms of the payload's fields.
func jsonError(err error) error {
	var semErr *json.SemanticError
	var synErr *jsontext.SyntacticError
	switch {
	case errors.As(err, &synErr) && errors.Is(synErr.Err, jsontext.ErrDuplicateName):
		key := synErr.JSONPointer.LastToken()
		if q := plain(key); q != "" {
			key = q
		} else {
			key = strconv.Quote(truncate(key, 64))
		}
		return invalid(fieldPath(synErr.JSONPointer.Parent()), "duplicate key %s", key)
	case errors.As(err, &synErr):
		return fmt.Errorf("%w: malformed JSON at byte %d: %v", ErrInvalid, synErr.ByteOffset, synErr.Err)
	case errors.As(err, &semErr):
		path := fieldPath(semErr.JSONPointer)
		if errors.Is(semErr.Err, json.ErrUnknownName) {
			return invalid(path, "unknown field")
		}
		want, got := goKind(semErr.GoType), jsonKind(semErr.JSONKind)
		if want == got && semErr.Err != nil { // the right kind, a wrong value: 1e400
			return invalid(path, "%v", semErr.Err)
		}
		return invalid(path, "want %s, got %s", want, got)
	}
	return fmt.Errorf("%w: malformed JSON: %v", ErrInvalid, err)
}

// fieldPath writes a JSON pointer (/events/3/target/tag) as the field it
// names (events[3].target.tag); the top-level object is "body". A token
// of digits is taken for an index. Names the sender chose are quoted
// unless they are plain ([A-Za-z0-9_-]), each cut to 64 bytes, the whole
// to 256.
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for name := range p.Tokens() {
		switch {
		case name != "" && strings.Trim(name, "0123456789") == "":
			b.WriteString("[" + truncate(name, 16) + "]")
			continue
		case b.Len() > 0:
			b.WriteByte('.')
		}
		name = truncate(name, 64)
		if name == "" || strings.Trim(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
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

// jsonKind names the kind of a JSON value, as goKind names Go's.
func jsonKind(k jsontext.Kind) string {
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

func goKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Float64, reflect.Int64:
		return "number"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice:
		return "array"
	case reflect.Bool:
		return "boolean"
	}
	return t.String()
}

// contentType checks the request's Content-Type, when it has one, against
// application/json and the sender's own media types.
func contentType(h http.Header, also ...string) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil && (mt == "application/json" || slices.Contains(also, mt)) {
		return nil
	}
	if mt == "application/x-www-form-urlencoded" {
		return invalid("Content-Type", "a form: set the webhook's content type to application/json")
	}
	want := strings.Join(append([]string{"application/json"}, also...), " or ")
	if q := plain(mt); q != "" && err == nil {
		return invalid("Content-Type", "%s: want %s", q, want)
	}
	return invalid("Content-Type", "want %s", want)
}
