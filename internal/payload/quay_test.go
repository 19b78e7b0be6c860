package payload

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestQuay(t *testing.T) {
	const list = "repo_push_list.json"
	api := func(tag string) Push { return Push{Repo: "quay.io/acme/api", Tag: tag} }
	q := func(pathValues ...any) string { return edited(t, "quay", list, pathValues...) }
	tags := make([]any, 1001)
	for i := range tags {
		tags[i] = "v" + strconv.Itoa(i)
	}
	asMap := make(map[string]any, 1001)
	for i := range tags {
		asMap["v"+strconv.Itoa(i)] = "b2c3e9d1f0a4"
	}

	cases := []parseCase{
		{name: "updated_tags a list", body: string(fixture(t, "quay", list)), want: Parsed{Pushes: []Push{api("1.9.0"), api("latest")}}},
		{name: "updated_tags a map, in the order sent", body: string(fixture(t, "quay", "repo_push_map.json")),
			want: Parsed{Pushes: []Push{api("1.8.3"), api("latest")}}},
		{name: "a self-hosted Quay", body: q("docker_url", "quay.example.com:8443/acme/api"),
			want: Parsed{Pushes: []Push{{Repo: "quay.example.com:8443/acme/api", Tag: "1.9.0"}, {Repo: "quay.example.com:8443/acme/api", Tag: "latest"}}}},
		{name: "no repository: docker_url alone", body: q("repository", remove), want: Parsed{Pushes: []Push{api("1.9.0"), api("latest")}}},
		{name: "a tag twice in the list", body: q("updated_tags", []any{"latest", "latest"}), want: Parsed{Pushes: []Push{api("latest")}}},
		{name: "no tags", body: q("updated_tags", []any{}), want: Parsed{Skipped: []Skip{{Reason: "no updated tags"}}}},
		{name: "signature tags", body: q("updated_tags", []any{"latest.sig", "1.9.0"}),
			want: Parsed{Pushes: []Push{api("1.9.0")}, Skipped: []Skip{{Tag: "latest.sig", Reason: "updated_tags[0]: signature or attestation tag"}}}},
		{name: "1000 tags", body: q("updated_tags", tags[:1000]), want: Parsed{Pushes: func() []Push {
			ps := make([]Push, 1000)
			for i := range ps {
				ps[i] = api("v" + strconv.Itoa(i))
			}
			return ps
		}()}},

		{name: "1001 tags", body: q("updated_tags", tags), err: "updated_tags: more than 1000 entries"},
		{name: "1001 tags in a map", body: q("updated_tags", asMap), err: "updated_tags: more than 1000 entries"},
		{name: "a tag twice in the map", body: `{"docker_url": "quay.io/acme/api", "updated_tags": {"latest": "a", "latest": "b"}}`,
			err: `updated_tags: duplicate key "latest"`},
		{name: "no updated_tags", body: q("updated_tags", remove), err: "updated_tags: missing"},
		{name: "updated_tags a string", body: q("updated_tags", "latest"), err: "updated_tags: want array, got string"},
		{name: "a tag a number", body: q("updated_tags", []any{1}), err: "updated_tags[0]: want string, got number"},
		{name: "an invalid tag", body: q("updated_tags", []any{"1.9.0", "la test"}), err: `updated_tags[1]: invalid tag "la test"`},
		{name: "no docker_url", body: q("docker_url", remove), err: "docker_url: missing"},
		{name: "docker_url of another repository", body: q("docker_url", "quay.io/acme/evil"), err: "docker_url: does not end with repository"},
		{name: "docker_url without a host", body: q("docker_url", "acme/api", "repository", "api"), err: `docker_url: want a registry host[:port] "acme"`},
		{name: "docker_url without a path", body: q("docker_url", "quay.io", "repository", remove), err: "docker_url: want <host>/<namespace>/<name>"},
		{name: "docker_url an URL", body: q("docker_url", "https://quay.io/acme/api", "repository", remove), err: `docker_url: want a registry host[:port] "https:"`},
		{name: "docker_url twice", body: strings.Replace(string(fixture(t, "quay", list)), `"docker_url": "quay.io/acme/api",`,
			`"docker_url": "quay.io/acme/api", "Docker_URL": "evil.example/acme/api",`, 1), err: `body: duplicate key "Docker_URL"`},
	}
	runCases(t, Quay, http.Header{"Content-Type": {"application/json"}}, cases)
}
