package payload

import (
	"crypto/sha256"
	"encoding/hex"
	stdjson "encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// parser is the shape every source's parser has.
type parser func(http.Header, []byte) (Parsed, error)

// sources lists every parser with the header a valid delivery of it has
// and a fixture that deploys.
var sources = []struct {
	name   string
	parse  parser
	header http.Header
	good   string // a fixture under testdata/<name>/
}{
	{"ghcr", GHCR, http.Header{"X-Github-Event": {"package"}, "X-Github-Delivery": {"72d3162e-cc78-11e3-81ab-4c9367dc0958"}}, "package_published.json"},
	{"distribution", Distribution, http.Header{"Content-Type": {mediaEventsV1}}, "batch_v1.json"},
	{"harbor", Harbor, http.Header{"Content-Type": {"application/json"}}, "default_push.json"},
	{"quay", Quay, http.Header{"Content-Type": {"application/json"}}, "repo_push_list.json"},
	{"ecr", ECR, http.Header{"Content-Type": {"application/json; charset=utf-8"}}, "push_success.json"},
	{"generic", Generic, http.Header{"Content-Type": {"application/json"}}, "with_digest.json"},
}

// dg is the digest the fixtures give for name: sha256 of the name.
func dg(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func fixture(tb testing.TB, source, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", source, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// parseCase is one delivery and what its parser must make of it: want, or
// an error containing err.
type parseCase struct {
	name   string
	header http.Header // nil: the source's usual header
	body   string
	want   Parsed
	err    string
	// skip, instead of want: no error, nothing to deploy, and a Skip
	// whose reason contains it.
	skip string
}

// runCases runs cases against parse; header is the one a case without its
// own gets.
func runCases(t *testing.T, parse parser, header http.Header, cases []parseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.header
			if h == nil {
				h = header
			}
			got, err := parse(h, []byte(tc.body))
			if tc.err != "" {
				checkError(t, err, tc.err)
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if tc.skip != "" {
				if len(got.Pushes) != 0 || !slices.ContainsFunc(got.Skipped, func(s Skip) bool { return strings.Contains(s.Reason, tc.skip) }) {
					t.Errorf("got %+v, want nothing to deploy and a skip with %q", got, tc.skip)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			checkParsed(t, got)
		})
	}
}

// checkError asserts err wraps ErrInvalid, contains want, and is a short
// line of printable text whatever the body held.
func checkError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	msg := err.Error()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(msg, want) {
		t.Fatalf("error %q: want ErrInvalid and %q", msg, want)
	}
	if len(msg) > 600 || strings.ContainsFunc(msg, func(r rune) bool { return !unicode.IsPrint(r) }) {
		t.Fatalf("error %q: too long or not printable", msg)
	}
}

// checkParsed asserts what every parser promises of a result.
func checkParsed(t testing.TB, p Parsed) {
	t.Helper()
	for _, ps := range append(p.Pushes[:len(p.Pushes):len(p.Pushes)], p.Deleted...) {
		if again, err := imageref.NormalizeRepo(ps.Repo); err != nil || again != ps.Repo {
			t.Fatalf("repo %q is not normalized: %q, %v", ps.Repo, again, err)
		}
		if !strings.Contains(ps.Repo, ".") && !strings.Contains(ps.Repo, ":") && !strings.HasPrefix(ps.Repo, "localhost/") {
			t.Fatalf("repo %q has no registry host", ps.Repo)
		}
		if err := imageref.ValidateTag(ps.Tag); err != nil || imageref.IsSignatureTag(ps.Tag) {
			t.Fatalf("tag %q deploys: %v", ps.Tag, err)
		}
		if _, err := digest("digest", ps.Digest); err != nil {
			t.Fatalf("digest %q: %v", ps.Digest, err)
		}
		if len(ps.Pusher) > maxPusher {
			t.Fatalf("pusher of %d bytes", len(ps.Pusher))
		}
	}
	if _, err := deliveryID("id", p.ID); err != nil {
		t.Fatalf("id %q: %v", p.ID, err)
	}
	if len(p.Pushes) > maxList || len(p.Deleted) > maxList || len(p.Skipped) > maxList {
		t.Fatalf("%d pushes, %d deleted, %d skipped", len(p.Pushes), len(p.Deleted), len(p.Skipped))
	}
}

// TestHostileBodies sends every parser bodies that are not a JSON object,
// not JSON, or JSON that hides a second value for a key.
func TestHostileBodies(t *testing.T) {
	for _, src := range sources {
		good := string(fixture(t, src.name, src.good))
		inner := strings.TrimPrefix(strings.TrimSpace(good), "{")
		cases := []parseCase{
			{name: "empty", body: "", err: "body: want a JSON object"},
			{name: "whitespace", body: " \r\n\t", err: "body: want a JSON object"},
			{name: "array", body: "[" + good + "]", err: "body: want a JSON object"},
			{name: "null", body: "null", err: "body: want a JSON object"},
			{name: "string", body: `"x"`, err: "body: want a JSON object"},
			{name: "BOM", body: "\xEF\xBB\xBF" + good, err: "body: want a JSON object"},
			{name: "form", body: "payload=" + good, err: "body: want a JSON object"},
			{name: "truncated", body: good[:len(good)/2], err: "malformed JSON"},
			{name: "trailing garbage", body: good + "x", err: "malformed JSON"},
			{name: "two objects", body: good + good, err: "malformed JSON"},
			{name: "a key twice at the top", body: `{"zz": 1, "zz": 2, ` + inner, err: `body: duplicate key "zz"`},
			{name: "a key twice deep down", body: `{"x": {"y": [{"k": 1, "k": 2}]}, ` + inner, err: `x.y[0]: duplicate key "k"`},
			{name: "a key with a newline twice", body: `{"a\nb": 1, "a\nb": 2, ` + inner, err: `body: duplicate key "a\nb"`},
			{name: "10k nested arrays", body: `{"x": ` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `, ` + inner, err: "exceeded max depth"},
			{name: "form content type", body: good, err: "Content-Type: a form",
				header: with(src.header, "Content-Type", "application/x-www-form-urlencoded")},
			{name: "text content type", body: good, err: `Content-Type: "text/plain": want application/json`,
				header: with(src.header, "Content-Type", "text/plain; charset=utf-8")},
		}
		if src.name == "generic" {
			// liftoff's own format refuses a key it does not know first.
			for i := range cases {
				if strings.Contains(cases[i].name, "key") || strings.Contains(cases[i].name, "nested") {
					cases[i].err = ": unknown field"
				}
			}
			cases = append(cases, parseCase{name: "tag twice", body: `{"tag": "a", "tag": "b", ` + inner, err: `body: duplicate key "tag"`},
				parseCase{name: "tag and Tag", body: `{"tag": "a", "Tag": "b", "image": "x"}`, err: `body: duplicate key "Tag"`})
		}
		t.Run(src.name, func(t *testing.T) { runCases(t, src.parse, src.header, cases) })
	}
}

// with is a copy of h with key set to value.
func with(h http.Header, key, value string) http.Header {
	c := h.Clone()
	c.Set(key, value)
	return c
}

// TestFieldPath: indices in brackets, names quoted unless plain, long
// paths cut.
func TestFieldPath(t *testing.T) {
	for ptr, want := range map[string]string{
		"":                              "body",
		"/events/3/target/tag":          "events[3].target.tag",
		"/a b/x":                        `"a b".x`,
		"/push_data/tag":                "push_data.tag",
		"/x\nlevel=error/k":             `"x\nlevel=error".k`,
		"/" + strings.Repeat("a/", 300): strings.Repeat("a.", 128),
	} {
		if got := fieldPath(jsontext.Pointer(ptr)); got != want {
			t.Errorf("fieldPath(%q) = %q, want %q", ptr, got, want)
		}
	}
}

// TestPushesOnce: one push per repository and tag; the index's digest
// wins over a platform's, else the last.
func TestPushesOnce(t *testing.T) {
	var p Parsed
	c := pushes{p: &p}
	c.add(Push{Repo: "r.io/a", Tag: "v1", Digest: dg("m1")}, false)
	c.add(Push{Repo: "r.io/a", Tag: "v1", Digest: dg("index")}, true)
	c.add(Push{Repo: "r.io/a", Tag: "v1", Digest: dg("m2")}, false)
	c.add(Push{Repo: "r.io/b", Tag: "v1", Digest: dg("b1")}, false)
	c.add(Push{Repo: "r.io/b", Tag: "v1", Digest: dg("b2"), Pusher: strings.Repeat("é", 200)}, false)
	if len(p.Pushes) != 2 || p.Pushes[0].Digest != dg("index") || p.Pushes[1].Digest != dg("b2") || len(p.Pushes[1].Pusher) != 254 {
		t.Fatalf("pushes %+v", p.Pushes)
	}
}

func TestTimes(t *testing.T) {
	for s, want := range map[string]time.Time{
		"2026-12-07T03:12:11.123456789Z": time.Date(2026, 12, 7, 3, 12, 11, 123456789, time.UTC),
		"2026-12-07T04:12:11+01:00":      time.Date(2026, 12, 7, 3, 12, 11, 0, time.UTC),
		"0001-01-01T00:00:00Z":           {},
		"yesterday":                      {},
		"":                               {},
	} {
		if got := rfc3339(s); !got.Equal(want) {
			t.Errorf("rfc3339(%q) = %v, want %v", s, got, want)
		}
	}
	if !unixTime(-1).IsZero() || !unixTime(1e12).IsZero() || unixTime(1765077131).Year() != 2025 {
		t.Error("unixTime")
	}
}

func TestLowerASCII(t *testing.T) {
	if got := lowerASCII("Acme-\u212Aorp"); got != "acme-\u212Aorp" {
		t.Errorf("lowerASCII = %q: only ASCII letters change", got)
	}
}

// remove, as the value of an edit, deletes the key.
var remove = &struct{}{}

// edited is a fixture with each path ("a.b.3.c") set to its value:
// edited(t, "ghcr", "x.json", "package.name", "api").
func edited(tb testing.TB, source, name string, pathValues ...any) string {
	tb.Helper()
	var m map[string]any
	if err := stdjson.Unmarshal(fixture(tb, source, name), &m); err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < len(pathValues); i += 2 {
		keys := strings.Split(pathValues[i].(string), ".")
		var at any = m
		for _, k := range keys[:len(keys)-1] {
			switch v := at.(type) {
			case map[string]any:
				at = v[k]
			case []any:
				n, _ := strconv.Atoi(k)
				at = v[n]
			}
		}
		last, v := keys[len(keys)-1], pathValues[i+1]
		switch c := at.(type) {
		case map[string]any:
			if v == remove {
				delete(c, last)
			} else {
				c[last] = v
			}
		case []any:
			n, _ := strconv.Atoi(last)
			c[n] = v
		default:
			tb.Fatalf("%s: no object at %s", name, pathValues[i])
		}
	}
	b, err := stdjson.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestHost(t *testing.T) {
	for h, ok := range map[string]bool{
		"ghcr.io": true, "Registry.Example.com:5000": true, "localhost": true, "localhost:5000": true, "registry:5000": true,
		"[::1]:5000": true, "registry": false, "https:": false, ":5000": false, "a.b:": false, "a.b:123456": false,
		"a.b:x": false, "a.b/c": false, "user@a.b": false, "": false,
	} {
		if _, err := host("h", h); (err == nil) != ok {
			t.Errorf("host(%q): %v", h, err)
		}
	}
}
