package payload

import (
	"net/http"
	"strings"
	"testing"
)

const ghDelivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"

func ghHeader(event string) http.Header {
	return http.Header{"X-Github-Event": {event}, "X-Github-Delivery": {ghDelivery}, "Content-Type": {"application/json"}}
}

func TestGHCR(t *testing.T) {
	const pub = "package_published.json"
	tagPath := "package.package_version.container_metadata.tag"
	web := Push{Repo: "ghcr.io/acme-corp/web", Tag: "v1.4.2", Digest: dg("web-index-v1.4.2"), Pusher: "octo-dev"}
	deploys := func(ps ...Push) Parsed { return Parsed{Pushes: ps, ID: ghDelivery} }
	skips := func(tag, reason string) Parsed {
		return Parsed{Skipped: []Skip{{Tag: tag, Reason: reason}}, ID: ghDelivery}
	}
	gh := func(pathValues ...any) string { return edited(t, "ghcr", pub, pathValues...) }
	withTag := func(tag string) string { return gh(tagPath+".name", tag) }
	sig := "sha256-" + dg("web-index-v1.4.2")[7:] + ".sig"
	pushed := string(fixture(t, "ghcr", pub))

	cases := []parseCase{
		// What GitHub sends.
		{name: "package published, the index with its tag", body: pushed, want: deploys(web)},
		{name: "registry_package published", header: ghHeader("registry_package"),
			body: string(fixture(t, "ghcr", "registry_package_published.json")), want: deploys(web)},
		{name: "a platform's manifest, untagged", body: string(fixture(t, "ghcr", "package_platform_untagged.json")),
			want: skips("", "untagged: nothing to deploy by tag")},
		{name: "ping", header: ghHeader("ping"), body: string(fixture(t, "ghcr", "ping.json")), want: Parsed{Ping: true, ID: ghDelivery}},
		{name: "an event liftoff does not read", header: ghHeader("push"), body: `{"ref": "refs/heads/main"}`,
			want: Parsed{Skipped: []Skip{{Reason: `not a package event: "push"`}}, ID: ghDelivery}},
		{name: "updated", body: gh("action", "updated"), want: deploys(web)},
		{name: "no delivery id", header: http.Header{"X-Github-Event": {"package"}}, body: pushed, want: Parsed{Pushes: []Push{web}}},
		{name: "package_type in lower case", body: gh("package.package_type", "container"), want: deploys(web)},
		{name: "no package_url: ghcr.io", body: gh("package.package_version.package_url", remove), want: deploys(web)},
		{name: "GitHub Enterprise Server", body: gh("package.package_version.package_url", "containers.ghe.example.com/acme-corp/web:v1.4.2"),
			want: deploys(Push{Repo: "containers.ghe.example.com/acme-corp/web", Tag: web.Tag, Digest: web.Digest, Pusher: web.Pusher})},
		{name: "namespace and name lower-cased, name with a slash", body: gh("package.namespace", "Acme-Corp", "package.name", "Web/API"),
			want: deploys(Push{Repo: "ghcr.io/acme-corp/web/api", Tag: web.Tag, Digest: web.Digest, Pusher: web.Pusher})},
		{name: "a version with its time", body: gh("package.package_version.created_at", "2026-12-07T03:12:11Z"),
			want: deploys(Push{Repo: web.Repo, Tag: web.Tag, Digest: web.Digest, Pusher: web.Pusher, PushedAt: rfc3339("2026-12-07T03:12:11Z")})},
		{name: "no digest", body: gh(tagPath+".digest", ""), want: deploys(Push{Repo: web.Repo, Tag: web.Tag, Pusher: web.Pusher})},

		// Skipped.
		{name: "deleted", body: gh("action", "deleted"), want: skips("", `action "deleted": only published and updated deploy`)},
		{name: "an npm package", body: gh("package.package_type", "npm"), want: skips("", `not a container package: "npm"`)},
		{name: "a Helm chart", body: gh("package.package_version.container_metadata.manifest.config.media_type", "application/vnd.cncf.helm.config.v1+json"),
			want: skips("v1.4.2", `not an image: config media type "application/vnd.cncf.helm.config.v1+json"`)},
		{name: "a signature tag", body: withTag(sig), want: skips(sig, "signature or attestation tag")},
		{name: "an attestation tag", body: withTag("sha256-" + strings.Repeat("ab", 32) + ".att"), want: skips("sha256-"+strings.Repeat("ab", 32)+".att", "signature or attestation tag")},
		{name: "a tag that is a digest", body: withTag(dg("x")), want: skips(dg("x"), "untagged: the tag is a digest")},

		// Errors.
		{name: "no X-GitHub-Event", header: http.Header{}, body: pushed, err: "X-GitHub-Event: missing"},
		{name: "a delivery id with a newline", header: with(ghHeader("package"), "X-GitHub-Delivery", "a\nb"), body: pushed,
			err: "X-GitHub-Delivery: want at most 128"},
		{name: "registry_package event of a package body", header: ghHeader("registry_package"), body: pushed, err: "registry_package: missing"},
		{name: "both package and registry_package", body: gh("registry_package", map[string]any{"name": "evil"}), err: "body: both package and registry_package"},
		{name: "tag with a space", body: withTag("v1 beta"), err: tagPath + `.name: invalid tag "v1 beta"`},
		{name: "tag not shown when not plain", body: withTag("v1\u202e"), err: tagPath + ".name: invalid tag: want"},
		{name: "tag too long", body: withTag(strings.Repeat("a", 129)), err: tagPath + ".name: tag is 129 characters long"},
		{name: "digest too short", body: gh(tagPath+".digest", "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234"), err: tagPath + ".digest: want sha256:<64"},
		{name: "no namespace", body: gh("package.namespace", ""), err: "package.namespace: missing"},
		{name: "no name", body: gh("package.name", remove), err: "package.name: missing"},
		{name: "invalid name", body: gh("package.name", "we..b"), err: `package.name: invalid repository "ghcr.io/acme-corp/we..b"`},
		{name: "package_url without a host", body: gh("package.package_version.package_url", "acme-corp/web:v1.4.2"),
			err: "package.package_version.package_url: want a registry host[:port]"},
		{name: "package_url of one word", body: gh("package.package_version.package_url", "web"),
			err: "package.package_version.package_url: want <registry host>/"},
		{name: "tag is a number", body: gh(tagPath+".name", 5), err: tagPath + ".name: want string, got number"},
		{name: "package is an array", body: gh("package", []any{}), err: "package: want object, got array"},
		{name: "package null", body: gh("package", nil), err: "package: missing"},
		{name: "tag twice", body: strings.Replace(pushed, `"name": "v1.4.2",`, `"name": "v1.4.2", "name": "evil",`, 1),
			err: tagPath + `: duplicate key "name"`},
		{name: "name and NAME", body: strings.Replace(pushed, `"name": "v1.4.2",`, `"name": "v1.4.2", "NAME": "evil",`, 1),
			err: tagPath + `: duplicate key "NAME"`},
		{name: "package and Package", body: strings.Replace(pushed, `"action": "published",`, `"action": "published", "Package": {},`, 1),
			err: `body: duplicate key "package"`},
	}
	runCases(t, GHCR, ghHeader("package"), cases)
}
