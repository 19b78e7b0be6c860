package deployments

import (
	"slices"
	"strings"
	"testing"
)

// A deployment that promotes from the one named: "  - {name: N, ...}".
func promoting(name, from string) string {
	s := "  - {name: " + name + ", image: acme/web, tags: [" + name + "]"
	if from != "" {
		s += ", promote_from: " + from
	}
	return s + "}\n"
}

// Each cycle is reported once, at the promote_from of its first
// deployment in the file, naming every deployment of it in order; a
// deployment that only leads into a cycle is not part of it.
func TestPromoteCycles(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string // each error line, in full
	}{
		{"self", promoting("web", "web"),
			nil, []string{`deployments[0].promote_from: "web" is this deployment's own name: promote from another deployment, e.g. its staging one`}},
		{"two", promoting("staging", "production") + promoting("production", "staging"),
			nil, []string{`deployments[0].promote_from: promote_from goes round in a cycle ("staging" promotes from "production", "production" promotes from "staging"): none of them could ever deploy, as each deploys only a digest that succeeded first in the one it promotes from`}},
		{"three", promoting("dev", "production") + promoting("staging", "dev") + promoting("production", "staging"),
			nil, []string{`deployments[0].promote_from: promote_from goes round in a cycle ("dev" promotes from "production", "production" promotes from "staging", "staging" promotes from "dev"): none`}},
		{"led into its second deployment", promoting("canary", "b2") + promoting("b1", "b2") + promoting("b2", "b1"),
			nil, []string{`deployments[1].promote_from: promote_from goes round in a cycle ("b1" promotes from "b2", "b2" promotes from "b1"): none`}},
		{"two cycles and a self", promoting("a1", "a2") + promoting("b1", "b2") + promoting("a2", "a1") + promoting("b2", "b1") + promoting("c1", "c1"),
			nil, []string{
				`deployments[0].promote_from: promote_from goes round in a cycle ("a1" promotes from "a2", "a2" promotes from "a1"): none`,
				`deployments[1].promote_from: promote_from goes round in a cycle ("b1" promotes from "b2", "b2" promotes from "b1"): none`,
				`deployments[4].promote_from: "c1" is this deployment's own name`,
			}},
		{"a name from a variable", promoting(`"${SECRET}"`, "production") + promoting("production", envSecret),
			nil, []string{`deployments[0].promote_from: promote_from goes round in a cycle ((value from ${VAR}) promotes from "production", "production" promotes from (value from ${VAR})): none`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(t, head+"deployments:\n"+tt.yaml)
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("%d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				if !found {
					t.Errorf("no error line starting %q in:\n%v", w, err)
				}
			}
			noLeak(t, err.Error())
		})
	}
}

func TestPromoteFromValid(t *testing.T) {
	c := mustParse(t, `hooks: [{source: dockerhub, token: "${HOOK_TOKEN}"}]
environments: {production: {}, staging: {}}
deployments:
  - {name: web-dev, image: acme/web, tags: [dev]}
  - {name: "${SECRET}", image: acme/web, tags: [staging], environment: staging, promote_from: web-dev}
  - {name: web-canary, image: acme/web, tags: [latest], environment: production, promote_from: "${SECRET}"}
  - {name: web-production, image: acme/web, tags: [latest], environment: production, promote_from: web-canary}
  - {name: mirror, image: registry.example.com/acme/web, tags: [latest], promote_from: web-production}
`)
	for name, from := range map[string]string{
		"web-dev":    "",
		envSecret:    "web-dev",        // a chain: dev → staging → canary → production
		"web-canary": envSecret,        // named by ${VAR} on both sides
		"mirror":     "web-production", // another repository with the same digests
		// The same environment: a canary proves a digest for production.
		"web-production": "web-canary",
	} {
		d := c.Deployment(name)
		if d == nil {
			t.Fatalf("no deployment %q", name)
		}
		if d.PromoteFrom.Deployment != from {
			t.Errorf("%s: promote_from %q, want %q", d.Name, d.PromoteFrom.Deployment, from)
		}
		if from != "" && c.Deployment(d.PromoteFrom.Deployment) == nil {
			t.Errorf("%s: promote_from %q is not a deployment", d.Name, d.PromoteFrom.Deployment)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("validating again: %v", err)
	}
}

// promote_from as a mapping: match digest (the default) or revision, with
// the revision label; a mistake in any key is named.
func TestPromoteFromByRevision(t *testing.T) {
	c := mustParse(t, head+`deployments:
  - {name: web-staging, image: acme/web-dev, tags: [staging]}
  - {name: web-prod, image: acme/web, tags: [latest], promote_from: {deployment: web-staging, match: revision}}
  - {name: web-eu, image: acme/web, tags: [eu], promote_from: {deployment: web-staging, match: revision, label: com.example.git-sha}}
  - {name: web-copy, image: acme/web, tags: [copy], promote_from: {deployment: web-prod}}
`)
	for name, want := range map[string]struct {
		from  string
		rev   bool
		label string
	}{
		"web-prod": {"web-staging", true, DefaultRevisionLabel},
		"web-eu":   {"web-staging", true, "com.example.git-sha"},
		"web-copy": {"web-prod", false, DefaultRevisionLabel},
	} {
		p := c.Deployment(name).PromoteFrom
		if p.Deployment != want.from || p.ByRevision() != want.rev || p.RevisionLabel() != want.label {
			t.Errorf("%s: promote_from %+v, want %+v", name, p, want)
		}
	}
	if got := c.RevisionLabels(); !slices.Equal(got, []string{DefaultRevisionLabel, "com.example.git-sha"}) {
		t.Errorf("RevisionLabels = %q", got)
	}

	for yaml, want := range map[string]string{
		`{deployment: web-staging, match: commit}`:                  `deployments[1].promote_from.match: "commit": want digest (the same image) or revision`,
		`{deployment: web-staging, label: x}`:                       "deployments[1].promote_from.label: only with match: revision",
		`{deployment: web-staging, match: revision, label: "a b"}`:  `deployments[1].promote_from.label: "a b": want a label key such as org.opencontainers.image.revision`,
		`{match: revision}`:                                         "deployments[1].promote_from.deployment: missing",
		`{deployment: nope, match: revision}`:                       `deployments[1].promote_from.deployment: unknown deployment "nope"`,
		`{deployment: web-prod, match: revision}`:                   `deployments[1].promote_from.deployment: "web-prod" is this deployment's own name`,
		`{deployment: web-staging, match: revision, revision: abc}`: `unknown key "revision"`,
	} {
		_, err := parseString(t, head+`deployments:
  - {name: web-staging, image: acme/web-dev, tags: [staging]}
  - {name: web-prod, image: acme/web, tags: [latest], promote_from: `+yaml+`}
`)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("promote_from %s: %v, want %q", yaml, err, want)
		}
	}
}
