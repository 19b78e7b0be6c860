package payload

import (
	"net/http"
	"strings"
	"testing"
)

func TestGeneric(t *testing.T) {
	api := Push{Repo: "registry.example.com:5000/team/api", Tag: "2.7.0", Digest: dg("generic-api")}
	cases := []parseCase{
		{name: "with a digest", body: string(fixture(t, "generic", "with_digest.json")), want: Parsed{Pushes: []Push{api}}},
		{name: "without a digest, on Docker Hub", body: string(fixture(t, "generic", "without_digest.json")),
			want: Parsed{Pushes: []Push{{Repo: "docker.io/acme/web", Tag: "staging"}}}},
		{name: "an official image", body: `{"image": "nginx", "tag": "1.27"}`, want: Parsed{Pushes: []Push{{Repo: "docker.io/library/nginx", Tag: "1.27"}}}},
		{name: "a signature tag", body: `{"image": "acme/web", "tag": "v1.sig"}`, want: Parsed{Skipped: []Skip{{Tag: "v1.sig", Reason: "signature or attestation tag"}}}},
		{name: "a digest for a tag", body: `{"image": "acme/web", "tag": "` + dg("x") + `"}`,
			want: Parsed{Skipped: []Skip{{Tag: dg("x"), Reason: "untagged: the tag is a digest"}}}},

		{name: "a key liftoff does not know", body: `{"image": "acme/web", "tag": "v1", "tags": ["v2"]}`, err: "tags: unknown field"},
		{name: "no image", body: `{"tag": "v1"}`, err: "image: missing"},
		{name: "no tag", body: `{"image": "acme/web"}`, err: "tag: missing"},
		{name: "image with a tag", body: `{"image": "acme/web:v1", "tag": "v1"}`, err: `image: repository "acme/web:v1" has a tag`},
		{name: "image not plain", body: `{"image": "acme/web\u0000", "tag": "v1"}`, err: "image: not a valid repository name"},
		{name: "image too long", body: `{"image": "acme/` + strings.Repeat("a", 600) + `", "tag": "v1"}`, err: "image: not a valid repository name"},
		{name: "an invalid tag", body: `{"image": "acme/web", "tag": "v1/../x"}`, err: `tag: invalid tag "v1/../x"`},
		{name: "an invalid digest", body: `{"image": "acme/web", "tag": "v1", "digest": "sha256:abc"}`, err: "digest: want sha256:"},
		{name: "image twice", body: `{"image": "acme/web", "IMAGE": "acme/evil", "tag": "v1"}`, err: `body: duplicate key "IMAGE"`},
		{name: "tag a list", body: `{"image": "acme/web", "tag": ["v1"]}`, err: "tag: want string, got array"},
	}
	runCases(t, Generic, http.Header{"Content-Type": {"application/json"}}, cases)
}
