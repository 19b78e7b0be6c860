package deployments

import (
	"reflect"
	"strings"
	"testing"
)

const matchConfig = head + `
deployments:
  - {name: web-staging, image: acme/web, tags: [staging, "glob:rc-*"]}
  - {name: web-prod, image: docker.io/acme/web, tags: [latest, "semver:^1"]}
  - {name: web-canary, image: index.docker.io/acme/web, tags: ["regexp:^v1\\.[0-9]+\\.[0-9]+$"]}
  - {name: nginx, image: nginx, tags: [stable]}
  - {name: local, image: "127.0.0.1:5000/acme/web", tags: [latest]}
`

func TestMatch(t *testing.T) {
	c := mustParse(t, matchConfig)
	sig := "sha256-" + strings.Repeat("ab", 32)
	tests := []struct {
		repo, tag string
		accepted  []string
		ignored   []Ignored
	}{
		{"docker.io/acme/web", "staging", []string{"web-staging"}, []Ignored{
			{Deployment: "web-prod", Reason: `tag "staging" matches none of [latest semver:^1]`},
			{Deployment: "web-canary", Reason: `tag "staging" matches none of [regexp:^v1\.[0-9]+\.[0-9]+$]`}}},
		{"docker.io/acme/web", "v1.4.2", []string{"web-prod", "web-canary"}, []Ignored{
			{Deployment: "web-staging", Reason: `tag "v1.4.2" matches none of [staging glob:rc-*]`}}},
		{"docker.io/acme/web", "dev", nil, []Ignored{
			{Deployment: "web-staging", Reason: `tag "dev" matches none of [staging glob:rc-*]`},
			{Deployment: "web-prod", Reason: `tag "dev" matches none of [latest semver:^1]`},
			{Deployment: "web-canary", Reason: `tag "dev" matches none of [regexp:^v1\.[0-9]+\.[0-9]+$]`}}},
		{"docker.io/library/nginx", "stable", []string{"nginx"}, nil},
		{"127.0.0.1:5000/acme/web", "latest", []string{"local"}, nil},
		{"docker.io/acme/web", sig + ".sig", nil, []Ignored{{Tag: sig + ".sig", Reason: "signature/attestation tags are not deployed"}}},
		{"docker.io/acme/web", sig, nil, []Ignored{{Tag: sig, Reason: "signature/attestation tags are not deployed"}}},
		{"docker.io/acme/api", "latest", nil, []Ignored{{Tag: "latest", Reason: "no deployment for docker.io/acme/api"}}},
		{"docker.io/acme/web", "bad tag", nil, []Ignored{{Tag: "bad tag", Reason: `invalid tag "bad tag": want [A-Za-z0-9_][A-Za-z0-9._-]{0,127}`}}},
	}
	for _, tt := range tests {
		t.Run(tt.repo+":"+tt.tag, func(t *testing.T) {
			got := c.Match(tt.repo, tt.tag)
			var names []string
			for _, d := range got.Accepted {
				names = append(names, d.Name)
				if d != c.Deployment(d.Name) {
					t.Errorf("Accepted holds a copy of %s, not the deployment", d.Name)
				}
			}
			if !reflect.DeepEqual(names, tt.accepted) || !reflect.DeepEqual(got.Ignored, tt.ignored) {
				t.Errorf("Match = %v %+v\nwant    %v %+v", names, got.Ignored, tt.accepted, tt.ignored)
			}
		})
	}
}

func BenchmarkMatch(b *testing.B) {
	c, err := Parse([]byte(matchConfig), "testdata", lookupMap(testEnv()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Match("docker.io/acme/web", "v1.4.2")
	}
}
