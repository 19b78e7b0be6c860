package deployments

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// urlSecret marks every receiver URL of these tests: no error may hold it.
const urlSecret = "URLSECRET-9a8b7c6d"

func notifyEnv() map[string]string {
	env := testEnv()
	env["SLACK_URL"] = "https://hooks.slack.com/services/" + urlSecret
	env["HOOK_URL"] = "http://127.0.0.1:9999/" + urlSecret
	env["BAD_URL"] = "ftp://" + urlSecret
	env["BAD_URL2"] = "http://%zz" + urlSecret
	return env
}

func parseNotify(t *testing.T, yaml string) (*Config, error) {
	t.Helper()
	return Parse([]byte(head+yaml), "testdata", lookupMap(notifyEnv()))
}

func TestNotificationsValid(t *testing.T) {
	c, err := parseNotify(t, `public_url: https://liftoff.example.com/
notifications:
  - {name: team, url: "${SLACK_URL}", format: slack}
  - name: audit
    url: ${HOOK_URL}
    format: json
    events: [succeeded, failed]
    environments: [production]
    secret_file: secret-key
`)
	if err != nil {
		t.Fatalf("Parse:\n%v", err)
	}
	if c.PublicURL != "https://liftoff.example.com" {
		t.Errorf("public_url %q, want it without the trailing slash", c.PublicURL)
	}
	if got := c.DeploymentURL("web 1"); got != "https://liftoff.example.com/deployments/web%201" {
		t.Errorf("DeploymentURL = %q", got)
	}
	team, audit := &c.Notifications[0], &c.Notifications[1]
	if !slices.Equal(team.Events, DefaultNotifyEvents()) || slices.Contains(team.Events, EventSucceeded) {
		t.Errorf("default events %v", team.Events)
	}
	for _, tc := range []struct {
		n         *Notification
		event     string
		env       string
		wantsThis bool
	}{
		{team, EventFailed, "staging", true},
		{team, EventFailed, "", true}, // no environments: every deployment
		{team, EventSucceeded, "production", false},
		{audit, EventSucceeded, "production", true},
		{audit, EventSucceeded, "staging", false},
		{audit, EventSucceeded, "", false},
		{audit, EventPending, "production", false},
	} {
		if got := tc.n.Wants(tc.event, tc.env); got != tc.wantsThis {
			t.Errorf("%s.Wants(%s, %q) = %v", tc.n.Name, tc.event, tc.env, got)
		}
	}
	key, err := audit.Key()
	if err != nil || string(key) != "FILESECRET-secret-key" {
		t.Errorf("Key = %q, %v", key, err)
	}
	if _, err := team.Key(); err == nil || strings.Contains(err.Error(), urlSecret) {
		t.Errorf("Key of a slack receiver: %v", err)
	}
	// Validate is idempotent: the defaults and the key's path stay.
	if err := c.Validate(); err != nil {
		t.Errorf("second Validate: %v", err)
	}
	if k, err := c.Notifications[1].Key(); err != nil || string(k) != "FILESECRET-secret-key" {
		t.Errorf("Key after a second Validate = %q, %v", k, err)
	}
	if c.DeploymentURL("x") != "https://liftoff.example.com/deployments/x" {
		t.Errorf("public_url after a second Validate: %q", c.PublicURL)
	}

	// No public_url: no links.
	c, err = parseNotify(t, "")
	if err != nil || c.DeploymentURL("web") != "" || len(c.Notifications) != 0 {
		t.Errorf("without notifications: %v, %q", err, c.DeploymentURL("web"))
	}
}

func TestNotificationsErrors(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("FILESECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"name, url, format missing", "notifications: [{events: [failed]}]\n", []string{
			"notifications[0].name: missing",
			"notifications[0].url: missing",
			"notifications[0].format: missing: want slack",
		}},
		{"bad name and duplicate", `notifications:
  - {name: "a b", url: "${SLACK_URL}", format: slack}
  - {name: team, url: "${SLACK_URL}", format: slack}
  - {name: team, url: "${SLACK_URL}", format: slack}
`, []string{`notifications[0].name: invalid name "a b"`, "notifications[2].name: duplicate of notifications[1]"}},
		{"urls", `notifications:
  - {name: a, url: "${BAD_URL}", format: slack}
  - {name: b, url: "${BAD_URL2}", format: slack}
  - {name: c, url: "/relative/URLSECRET-9a8b7c6d", format: slack}
  - {name: d, url: "https://x.example/URLSECRET-9a8b7c6d#frag", format: slack}
  - {name: e, url: "https:///URLSECRET-9a8b7c6d", format: slack}
`, []string{
			"notifications[0].url: want an absolute http:// or https:// URL",
			"notifications[1].url: not a valid URL",
			"notifications[2].url: want an absolute http:// or https:// URL",
			"notifications[3].url: has a #fragment",
			"notifications[4].url: has no host",
		}},
		{"format, events, environments", `notifications:
  - {name: a, url: "${SLACK_URL}", format: teams, events: [failed, deployed, failed], environments: [production, qa, production]}
  - {name: b, url: "${SLACK_URL}", format: slack, events: []}
`, []string{
			`notifications[0].format: unknown format "teams": want slack or json`,
			`notifications[0].events[1]: unknown event "deployed"`,
			"notifications[0].events[2]: failed is listed twice",
			`notifications[0].environments[1]: unknown environment "qa" (have: production, staging)`,
			`notifications[0].environments[2]: "production" is listed twice`,
			"notifications[1].events: empty: list events",
		}},
		{"secret_file", `notifications:
  - {name: a, url: "${HOOK_URL}", format: json}
  - {name: b, url: "${SLACK_URL}", format: slack, secret_file: secret-key}
  - {name: c, url: "${HOOK_URL}", format: json, secret_file: nope}
  - {name: d, url: "${HOOK_URL}", format: json, secret_file: ` + short + `}
  - {name: e, url: "${HOOK_URL}", format: json, secret_file: empty-secret}
`, []string{
			"notifications[0].secret_file: missing: a json receiver's messages are signed",
			"notifications[1].secret_file: has no effect with format slack",
			"notifications[2].secret_file: stat ",
			"notifications[3].secret_file: the key it holds is too short",
			"notifications[4].secret_file: the key it holds is too short",
		}},
		{"public_url", "public_url: liftoff.example.com\n", []string{`public_url: want the status page's address`}},
		{"public_url with a query", "public_url: https://x.example/?a=b\n", []string{`public_url: want scheme://host[:port]`}},
		{"public_url with a path", "public_url: https://x.example/ops/\n", []string{`public_url: the status page is served at the root of its host`}},
		{"unknown key", "notifications: [{name: a, url: \"${SLACK_URL}\", format: slack, channel: x}]\n", []string{`notifications: unknown key "channel" (line 3)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseNotify(t, tc.yaml)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			for _, m := range append(slices.Clone(leakMarkers), urlSecret, "hooks.slack.com", "x.example") {
				if strings.Contains(msg, m) {
					t.Errorf("error holds the secret %q:\n%s", m, msg)
				}
			}
		})
	}
}

// The notifications block example.yaml leaves commented out is valid
// once uncommented, with its variables set.
func TestExampleNotificationsBlock(t *testing.T) {
	data, err := os.ReadFile(exampleYAML)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	uncommented, in := 0, false
	for i, line := range lines {
		switch {
		case strings.HasPrefix(line, "# public_url:"), strings.HasPrefix(line, "# notifications:"):
			lines[i] = line[2:]
			in = strings.HasPrefix(lines[i], "notifications:")
		case in && strings.HasPrefix(line, "#   "):
			lines[i] = line[2:]
		default:
			in = false
			continue
		}
		uncommented++
	}
	if uncommented < 6 {
		t.Fatalf("found %d lines of the notifications block to uncomment", uncommented)
	}
	env := map[string]string{"LIFTOFF_HOOK_TOKEN": hookToken, "LIFTOFF_SLACK_URL": "https://hooks.slack.com/services/" + urlSecret,
		"LIFTOFF_NOTIFY_URL": "https://ci.example.com/liftoff"}
	c, err := Parse([]byte(strings.Join(lines, "\n")), exampleDir, lookupMap(env))
	if err != nil {
		t.Fatalf("example.yaml with the notifications block:\n%v", err)
	}
	if len(c.Notifications) < 2 || c.PublicURL == "" {
		t.Fatalf("notifications %+v, public_url %q", c.Notifications, c.PublicURL)
	}
	formats := map[string]bool{}
	for _, n := range c.Notifications {
		formats[n.Format] = true
	}
	if !maps.Equal(formats, map[string]bool{NotifySlack: true, NotifyJSON: true}) {
		t.Errorf("formats %v, want both", formats)
	}
}
