package deployments

import (
	"strings"
	"testing"
	"time"
)

const previewDoor = "front_door: {listen: \":8443\"}\n"

func previewDeployment(previews string) string {
	return previewDoor + "deployments:\n  - {name: web, image: acme/web, tags: [staging], proxy: {hosts: [web.example.com], port: 8000}, previews: " + previews + "}\n"
}

func TestPreviewsErrors(t *testing.T) {
	ok := `{tags: "glob:pr-*", host: "{tag}.preview.example.com", ttl: 72h, max: 10}`
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"no tags", previewDeployment(`{host: "{tag}.p.example.com", ttl: 1h, max: 1}`), "deployments[0].previews.tags: missing: one tag rule"},
		{"bad rule", previewDeployment(`{tags: "glob:[", host: "{tag}.p.example.com", ttl: 1h, max: 1}`), `deployments[0].previews.tags: invalid glob "["`},
		{"unknown rule", previewDeployment(`{tags: "wild:pr-*", host: "{tag}.p.example.com", ttl: 1h, max: 1}`), "deployments[0].previews.tags:"},
		{"pattern without glob:", previewDeployment(`{tags: "pr-*", host: "{tag}.p.example.com", ttl: 1h, max: 1}`), `deployments[0].previews.tags: "pr-*" is a pattern without its kind: write "glob:pr-*"`},
		{"host label too long", previewDeployment(`{tags: "glob:pr-*", host: "{tag}.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.com", ttl: 1h, max: 1}`), "longer than 63 characters"},
		{"exact tag", previewDeployment(`{tags: "pr-1", host: "{tag}.p.example.com", ttl: 1h, max: 1}`), `deployments[0].previews.tags: "pr-1" names one tag`},
		{"rule of the deployment", previewDoor + "deployments:\n  - {name: web, image: acme/web, tags: [\"glob:pr-*\"], proxy: {hosts: [web.example.com], port: 8000}, previews: " + ok + "}\n",
			`deployments[0].previews.tags: "glob:pr-*" is also one of tags`},
		{"no host", previewDeployment(`{tags: "glob:pr-*", ttl: 1h, max: 1}`), "deployments[0].previews.host: missing"},
		{"host without tag", previewDeployment(`{tags: "glob:pr-*", host: "preview.example.com", ttl: 1h, max: 1}`), `deployments[0].previews.host: "preview.example.com" has no {tag}`},
		{"host not a host", previewDeployment(`{tags: "glob:pr-*", host: "https://{tag}.example.com", ttl: 1h, max: 1}`), `deployments[0].previews.host: "https://{tag}.example.com": want a host name`},
		{"wildcard host", previewDeployment(`{tags: "glob:pr-*", host: "*.{tag}.example.com", ttl: 1h, max: 1}`), `deployments[0].previews.host: "*.{tag}.example.com": a preview's host is exact`},
		{"no ttl", previewDeployment(`{tags: "glob:pr-*", host: "{tag}.p.example.com", max: 1}`), "deployments[0].previews.ttl: want how long"},
		{"negative ttl", previewDeployment(`{tags: "glob:pr-*", host: "{tag}.p.example.com", ttl: -1h, max: 1}`), "deployments[0].previews.ttl: want how long"},
		{"no max", previewDeployment(`{tags: "glob:pr-*", host: "{tag}.p.example.com", ttl: 1h}`), "deployments[0].previews.max: want how many"},
		{"max 0", previewDeployment(`{tags: "glob:pr-*", host: "{tag}.p.example.com", ttl: 1h, max: 0}`), "deployments[0].previews.max: want how many"},
		{"unknown key", previewDeployment(`{tags: "glob:pr-*", host: "{tag}.p.example.com", ttl: 1h, max: 1, tll: 2h}`), `unknown key "tll"`},
		{"null", previewDoor + "deployments:\n  - name: web\n    image: acme/web\n    tags: [x]\n    proxy: {hosts: [web.example.com], port: 8000}\n    previews:\n", "deployments[0].previews: given with no value"},
		{"no front door", "deployments:\n  - {name: web, image: acme/web, tags: [x], proxy: {listen: \":8001\", port: 8000}, previews: " + ok + "}\n", "deployments[0].previews: previews are served by the front door: add front_door"},
		{"no proxy", previewDoor + "deployments:\n  - {name: web, image: acme/web, tags: [x], previews: " + ok + "}\n", "deployments[0].previews: a preview is served on the deployment's proxy.port"},
		{"name of a preview", previewDeployment(ok) + "  - {name: web-pr-1, image: acme/web, tags: [x]}\n", `deployments[1].name: "web-pr-1" is the name a preview of web would take`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseString(t, head+tt.yaml)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

func TestPreviewMatchAndCopy(t *testing.T) {
	cfg := mustParse(t, `hooks: [{source: dockerhub, token: "${HOOK_TOKEN}"}]
environments:
  staging: {backup: {image: postgres:16, command: [pg_dump]}}
`+previewDoor+`deployments:
  - name: web
    image: acme/web
    tags: [staging]
    environment: staging
    container: {aliases: [web], networks: [net]}
    proxy: {hosts: [web.example.com], port: 8000}
    poll: {interval: 5m}
    previews: {tags: "glob:pr-*", host: "{tag}.preview.example.com", ttl: 72h, max: 2}
`)
	m := cfg.Match("docker.io/acme/web", "pr-12")
	if len(m.Accepted) != 1 || len(m.Ignored) != 0 {
		t.Fatalf("match pr-12: %+v", m)
	}
	p := m.Accepted[0]
	if p.Name != "web-pr-12" || p.Container.Name != "web-pr-12" || p.PreviewOf != "web" || p.PreviewTag != "pr-12" {
		t.Errorf("preview: name %q container %q of %q tag %q", p.Name, p.Container.Name, p.PreviewOf, p.PreviewTag)
	}
	if len(p.Container.Aliases) != 0 || p.Poll != nil || p.Previews != nil || p.Proxy.Hosts[0] != "pr-12.preview.example.com" || p.Proxy.Port != 8000 {
		t.Errorf("preview keeps what is the deployment's alone: %+v %+v", p.Container, p.Proxy)
	}
	if cfg.BackupFor(p) != nil || cfg.BackupFor(cfg.Deployment("web")) == nil {
		t.Error("a preview runs the environment's backup, or the deployment does not")
	}
	if got := cfg.Deployment("web-pr-12"); got == nil || got.PreviewTag != "pr-12" {
		t.Errorf("Deployment(web-pr-12) = %+v", got)
	}
	if cfg.Deployment("web-staging") != nil || cfg.Deployment("web-") != nil {
		t.Error("a name no preview rule takes is a deployment")
	}
	if m := cfg.Match("docker.io/acme/web", "staging"); len(m.Accepted) != 1 || m.Accepted[0].Name != "web" {
		t.Errorf("match staging: %+v", m)
	}
	if m := cfg.Match("docker.io/acme/web", "v1"); len(m.Accepted) != 0 {
		t.Errorf("match v1: %+v", m)
	}
	// A tag's delete: the deployments whose previews take it, none whose
	// own tags do, none of another repository.
	for _, tt := range []struct{ repo, tag, want string }{
		{"docker.io/acme/web", "pr-12", "web"},
		{"docker.io/acme/web", "staging", ""},
		{"docker.io/acme/web", "v1", ""},
		{"docker.io/acme/api", "pr-12", ""},
		{"docker.io/acme/web", "bad tag", ""},
	} {
		var names []string
		for _, d := range cfg.PreviewsOf(tt.repo, tt.tag) {
			names = append(names, d.Name)
		}
		if strings.Join(names, ",") != tt.want {
			t.Errorf("PreviewsOf(%s, %s) = %v, want %q", tt.repo, tt.tag, names, tt.want)
		}
	}
	if h := PreviewHost(cfg.Deployment("web"), "PR_1.2"); h != "pr-1-2.preview.example.com" {
		t.Errorf("host of PR_1.2: %s", h)
	}
	if d := cfg.Deployment("web"); d.Previews.TTL != 72*time.Hour || d.Previews.Max != 2 {
		t.Errorf("previews: %+v", d.Previews)
	}
	// Polled: the previews rule is polled too, after the deployment's.
	var rules []string
	for _, r := range cfg.Deployment("web").PollRules() {
		rules = append(rules, r.String())
	}
	if strings.Join(rules, " ") != "staging glob:pr-*" {
		t.Errorf("poll rules: %v, want [staging glob:pr-*]", rules)
	}
}

// TestPreviewLongTag: a tag whose preview host would have a label longer
// than DNS allows (63) starts no preview: the push is ignored for the
// preview with the reason, rather than starting one at a host no client can
// resolve and no CA certifies (or, cut short, one another tag shares).
func TestPreviewLongTag(t *testing.T) {
	cfg := mustParse(t, previewDoor+`deployments:
  - name: web
    image: acme/web
    tags: [staging]
    proxy: {hosts: [web.example.com], port: 8000}
    previews: {tags: "glob:pr-*", host: "{tag}-web.preview.example.com", ttl: 72h, max: 2}
`)
	long := "pr-" + strings.Repeat("x", 56) // 59 characters, 63 with "-web"
	if m := cfg.Match("docker.io/acme/web", long); len(m.Accepted) != 1 || m.Accepted[0].Proxy.Hosts[0] != long+"-web.preview.example.com" {
		t.Fatalf("a push of a 59-character tag: %+v", m)
	}
	for _, tag := range []string{long + "y", "pr-" + strings.Repeat("y", 100)} {
		m := cfg.Match("docker.io/acme/web", tag)
		if len(m.Accepted) != 0 {
			t.Errorf("a push of %s started the preview at %s", tag, m.Accepted[0].Proxy.Hosts[0])
		}
		if len(m.Ignored) != 1 || m.Ignored[0].Deployment != "web" || !strings.Contains(m.Ignored[0].Reason, "starts no preview") ||
			!strings.Contains(m.Ignored[0].Reason, "longer than 63 characters") {
			t.Errorf("a push of %s: ignored %+v, want the reason", tag, m.Ignored)
		}
		if p := cfg.Deployments[0].Preview(tag); p != nil {
			t.Errorf("Preview(%s) = %s", tag, p.Name)
		}
		if p := cfg.Deployment("web-" + tag); p != nil {
			t.Errorf("Deployment(web-%s) = %s", tag, p.Name)
		}
	}
}

// TestPreviewTagNotASetAsideName: a tag such as pr-1.liftoff-next would
// name its preview web-pr-1.liftoff-next, the name under which a deploy of
// the preview web-pr-1 starts its next container (and .liftoff-prev the
// one it sets the old aside as): whoever can push such a tag could have
// one preview's deploy or repair take the other's container. Such a push
// starts no preview.
func TestPreviewTagNotASetAsideName(t *testing.T) {
	cfg := mustParse(t, previewDoor+`deployments:
  - name: web
    image: acme/web
    tags: [staging]
    proxy: {hosts: [web.example.com], port: 8000}
    previews: {tags: "glob:pr-*", host: "{tag}.preview.example.com", ttl: 72h, max: 2}
`)
	for _, tag := range []string{"pr-1.liftoff-next", "pr-1.liftoff-prev"} {
		if m := cfg.Match("docker.io/acme/web", tag); len(m.Accepted) != 0 {
			t.Errorf("a push of %s started the preview %s", tag, m.Accepted[0].Name)
		}
		if p := cfg.Deployments[0].Preview(tag); p != nil {
			t.Errorf("Preview(%s) = %s", tag, p.Name)
		}
	}
	if m := cfg.Match("docker.io/acme/web", "pr-1.liftoff"); len(m.Accepted) != 1 {
		t.Errorf("a push of pr-1.liftoff started no preview: %+v", m)
	}
}
