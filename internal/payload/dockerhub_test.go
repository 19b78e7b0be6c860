package payload

import (
	stdjson "encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json"

	"github.com/liftoff-deploy/liftoff/internal/imageref"
)

// hub is a Docker Hub delivery with the raw JSON objects pushData and
// repository.
func hub(pushData, repository string) string {
	return `{"callback_url": "https://registry.hub.docker.com/u/pmpl/dblood/hook/2141b5/", "push_data": ` + pushData +
		`, "repository": ` + repository + `}`
}

func TestDockerHub(t *testing.T) {
	good := `{"repo_name": "pmpl/dblood"}`
	withTag := func(tag string) string { return hub(`{"tag": `+tag+`, "pusher": "ci"}`, good) }
	withRepo := func(repo string) string { return hub(`{"tag": "v1"}`, `{"repo_name": `+repo+`}`) }
	sig := "sha256-" + strings.Repeat("ab", 32) + ".sig"
	one := func(repo, tag, pusher string, at time.Time) Parsed {
		return Parsed{Pushes: []Push{{Repo: repo, Tag: tag, Pusher: pusher, PushedAt: at}}}
	}
	fix := func(name string) string { return string(fixture(t, "dockerhub", name)) }
	runCases(t, DockerHub, nil, []parseCase{
		{name: "push", body: fix("push.json"), want: one("docker.io/pmpl/dblood", "staging", "pmpl-ci", time.Unix(1717171717, 0).UTC())},
		{name: "legacy: pushed_at a float", body: fix("push_legacy.json"),
			want: one("docker.io/svendowideit/testhook", "latest", "trustedbuilder", time.Unix(1417566161, 0).UTC())},
		{name: "official as library/nginx", body: fix("official_library.json"),
			want: one("docker.io/library/nginx", "1.27-alpine", "doijanky", time.Unix(1717200000, 0).UTC())},
		{name: "official as nginx", body: fix("official_short.json"),
			want: one("docker.io/library/nginx", "1.27-alpine", "doijanky", time.Unix(1717200000, 0).UTC())},
		{name: "repo_name empty: namespace/name", body: hub(`{"tag": "v1"}`, `{"repo_name": "", "namespace": "acme", "name": "web"}`),
			want: one("docker.io/acme/web", "v1", "", time.Time{})},
		{name: "name alone", body: hub(`{"tag": "v1"}`, `{"name": "nginx"}`), want: one("docker.io/library/nginx", "v1", "", time.Time{})},
		{name: "docker.io named", body: withRepo(`"index.docker.io/acme/web"`), want: one("docker.io/acme/web", "v1", "", time.Time{})},
		{name: "pushed_at negative", body: hub(`{"tag": "v1", "pushed_at": -3}`, good), want: one("docker.io/pmpl/dblood", "v1", "", time.Time{})},
		{name: "pushed_at with a fraction", body: hub(`{"tag": "v1", "pushed_at": 1717171717.5}`, good),
			want: one("docker.io/pmpl/dblood", "v1", "", time.Unix(1717171717, 5e8).UTC())},
		{name: "pusher cut", body: hub(`{"tag": "v1", "pusher": "`+strings.Repeat("é", 200)+`"}`, good),
			want: one("docker.io/pmpl/dblood", "v1", strings.Repeat("é", 127), time.Time{})},
		{name: "pusher not UTF-8", body: hub(`{"tag": "v1", "pusher": "ci`+"\xff"+`bot"}`, good),
			want: one("docker.io/pmpl/dblood", "v1", "ci\uFFFDbot", time.Time{})},
		{name: "signature tag", body: withTag(strconv.Quote(sig)), want: Parsed{Skipped: []Skip{{Tag: sig, Reason: "signature or attestation tag"}}}},
		{name: "text/plain", header: http.Header{"Content-Type": {"text/plain"}}, body: withTag(`"v1"`),
			want: one("docker.io/pmpl/dblood", "v1", "ci", time.Time{})},

		{name: "not an object", body: `[]`, err: "body: want a JSON object"},
		{name: "malformed", body: `{"push_data": {"tag": "v1"`, err: "malformed JSON"},
		{name: "empty object", body: `{}`, err: "repository.repo_name: missing"},
		{name: "missing tag", body: withTag(`""`), err: "push_data.tag: missing"},
		{name: "null tag", body: withTag(`null`), err: "push_data.tag: missing"},
		{name: "push_data null", body: hub(`null`, good), err: "push_data.tag: missing"},
		{name: "tag a number", body: withTag(`1`), err: "push_data.tag: want string, got number"},
		{name: "push_data a string", body: hub(`"v1"`, good), err: "push_data: want object, got string"},
		{name: "pushed_at a string", body: hub(`{"tag": "v1", "pushed_at": "1717171717"}`, good), err: "push_data.pushed_at: want number, got string"},
		{name: "pushed_at overflows", body: hub(`{"tag": "v1", "pushed_at": 1e400}`, good), err: "push_data.pushed_at: "},
		{name: "invalid tag", body: withTag(`"-x"`), err: `push_data.tag: invalid tag "-x"`},
		{name: "tag not plain", body: withTag(`"v\n1"`), err: "push_data.tag: invalid tag: want"},
		{name: "tag of 900 KB", body: withTag(`"` + strings.Repeat("a", 900<<10) + `"`), err: "push_data.tag: tag is 921600 characters long"},
		{name: "uppercase repo", body: withRepo(`"Pmpl/Dblood"`), err: `repository.repo_name: invalid repository "Pmpl/Dblood"`},
		{name: "repo with a tag", body: withRepo(`"pmpl/dblood:v1"`), err: "repository.repo_name: repository \"pmpl/dblood:v1\" has a tag"},
		{name: "repo of 900 KB", body: withRepo(`"pmpl/` + strings.Repeat("a", 900<<10) + `"`), err: "repository.repo_name: not a valid repository name"},
		{name: "repo on GHCR", body: withRepo(`"ghcr.io/pmpl/dblood"`), err: `repository.repo_name: "ghcr.io/pmpl/dblood" is not on Docker Hub`},
		{name: "repo on localhost", body: withRepo(`"localhost/pmpl/dblood"`), err: "is not on Docker Hub"},
		{name: "tag twice", body: hub(`{"tag": "v1", "TAG": "evil"}`, good), err: `push_data: duplicate key "TAG"`},
		{name: "repo_name twice", body: hub(`{"tag": "v1"}`, `{"repo_name": "a/b", "repo_name": "c/d"}`), err: `repository: duplicate key "repo_name"`},
	})
}

// TestDockerHubParser: the parser with its cache reads every delivery as
// DockerHub does, and again once it remembers the repositories.
func TestDockerHubParser(t *testing.T) {
	p := NewDockerHubParser()
	bodies := []string{hub(`{"tag": "v1"}`, `{"repo_name": "Acme/web"}`), hub(`{"tag": "v1"}`, `{"repo_name": "ghcr.io/a/b"}`)}
	for _, name := range []string{"push.json", "push_legacy.json", "official_library.json", "official_short.json"} {
		bodies = append(bodies, string(fixture(t, "dockerhub", name)))
	}
	for range 2 {
		for _, b := range bodies {
			got, gotErr := p.Parse(nil, []byte(b))
			want, wantErr := DockerHub(nil, []byte(b))
			if !reflect.DeepEqual(got, want) || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Errorf("%.80s: Parse %+v, %v; DockerHub %+v, %v", b, got, gotErr, want, wantErr)
			}
		}
	}
}

// TestRepoCache: the cache answers what NormalizeRepo answers, and holds
// no more names than it has slots.
func TestRepoCache(t *testing.T) {
	c := &NewDockerHubParser().repos
	names := []string{"acme/web", "nginx", "library/nginx", "docker.io/acme/web", "registry-1.docker.io/acme/web",
		"index.docker.io/acme/web", "Acme/web", "acme/web:tag", "acme/web@sha256:" + strings.Repeat("ab", 32),
		"ghcr.io/acme/web", "", "../x", strings.Repeat("a", 300)}
	for range 3 { // the first time fills it, then it answers
		for _, n := range names {
			got, err := c.normalize(n)
			want, wantErr := imageref.NormalizeRepo(n)
			if got != want || (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
				t.Errorf("normalize(%q) = %q, %v; NormalizeRepo: %q, %v", n, got, err, want, wantErr)
			}
		}
	}
	for i := range 10 * len(c.slots) {
		c.normalize("acme/app-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i/26))
	}
	held := 0
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			held++
		}
	}
	if held > len(c.slots) {
		t.Errorf("%d names held", held)
	}
	if n := testing.AllocsPerRun(100, func() { c.normalize("acme/web") }); n != 0 {
		t.Errorf("a name remembered costs %v allocations", n)
	}
}

// The server gives a body's buffer back for the next delivery once it is
// parsed: what the parse returns must not point into it.
func TestDockerHubOutlivesItsBody(t *testing.T) {
	p := NewDockerHubParser()
	for _, name := range []string{"push.json", "push_legacy.json", "official_short.json"} {
		body := fixture(t, "dockerhub", name)
		got, err := p.Parse(nil, body)
		if err != nil || len(got.Pushes) != 1 {
			t.Fatalf("%s: %+v, %v", name, got, err)
		}
		want := got.Pushes[0]
		want.Repo, want.Tag, want.Pusher = strings.Clone(want.Repo), strings.Clone(want.Tag), strings.Clone(want.Pusher)
		for i := range body {
			body[i] = 'x'
		}
		if got.Pushes[0] != want {
			t.Errorf("%s: the push changed with its body: %+v, want %+v", name, got.Pushes[0], want)
		}
	}
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"aé", 2, "a"}, // é is two bytes: not split
		{"ééé", 5, "éé"},
	} {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// TestDuplicateKeyFold: senderJSON takes two keys for the same field (and
// refuses them together) exactly when encoding/json takes both for it.
func TestDuplicateKeyFold(t *testing.T) {
	for _, tt := range []struct{ field, key string }{
		{"tag", "TAG"},
		{"tag", "Tag"},
		{"push_data", "pu\u017fh_data"}, // long s
		{"push_data", "pushdata"},
		{"push_data", "PUSH-DATA"},
		{"kind", "\u212aind"}, // Kelvin sign
		{"tag", "tags"},
		{"repo_name", "repo-name"},
		{"pusher", "pushér"},
		{"pusher", "PUSHÉR"},
		{"é", "É"},
	} {
		typ := reflect.StructOf([]reflect.StructField{{Name: "X", Type: reflect.TypeFor[string](), Tag: reflect.StructTag(`json:"` + tt.field + `"`)}})
		v := reflect.New(typ)
		if err := stdjson.Unmarshal([]byte(`{`+strconv.Quote(tt.key)+`: "set"}`), v.Interface()); err != nil {
			t.Fatal(err)
		}
		stdSame := v.Elem().Field(0).String() == "set"
		both := `{` + strconv.Quote(tt.field) + `: "a", ` + strconv.Quote(tt.key) + `: "b"}`
		err := json.Unmarshal([]byte(both), reflect.New(typ).Interface(), senderJSON)
		if refused := err != nil; refused != stdSame {
			t.Errorf("%s: refused %v (%v); encoding/json takes %q for %q: %v", both, refused, err, tt.key, tt.field, stdSame)
		}
	}
}
