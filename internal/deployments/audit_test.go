package deployments

import (
	"strings"
	"testing"
	"time"
)

// TestAudit: each risky thing a valid config can do is one finding naming
// its field, and saying what and why; a config that does none of them
// has none; no finding quotes a secret.
func TestAudit(t *testing.T) {
	const hookURL = "http://hooks.example.com/services/T000/B000/XXXXSECRETXXXX"
	risky := mustParse(t, `hooks:
  - {source: dockerhub, token: "${HOOK_TOKEN}"}
  - {source: distribution, token: distribution-token-0123456789abcdef}
environments: {production: {}, staging: {}}
listen: ":8080"
hook_rate_limit: -1
docker_host: tcp://127.0.0.1:2375
engines:
  web2: {host: "tcp://10.0.0.12:2375", insecure: true}
api_tokens:
  - {name: root, token: root-token-0123456789abcdef0123, scopes: [admin]}
  - {name: ci, token: ci-token-0123456789abcdef01234567, scopes: ["deploy:*", read]}
notifications:
  - {name: team, url: "`+hookURL+`", format: slack}
  - {name: local, url: "http://127.0.0.1:9000/hook", format: slack}
`)
	want := map[string]string{
		"listen":                  "the management API and the status page are served on every interface, over plain HTTP",
		"listen ":                 "/metrics is served on every interface",
		"engines.web2.insecure":   "a Docker engine reached over plain TCP",
		"api_tokens[0].scopes":    `token "root" has admin`,
		"api_tokens[1].scopes":    `token "ci" has deploy:*`,
		"hook_rate_limit":         "the rate limit of /hooks is off",
		"hooks[1].auth_header":    "the distribution hook has no auth_header",
		"notifications[0].url":    `receiver "team" is sent to over plain http://`,
		"notifications[1].url  ?": "", // loopback: not a finding
	}
	got := risky.Audit()
	text := ""
	for _, f := range got {
		text += f.String() + "\n"
		if f.Why == "" || f.Risk == "" {
			t.Errorf("finding without what or why: %+v", f)
		}
	}
	for field, risk := range want {
		if risk == "" {
			continue
		}
		if !strings.Contains(text, strings.TrimSpace(field)+": "+risk) {
			t.Errorf("no finding %s: %s in:\n%s", strings.TrimSpace(field), risk, text)
		}
	}
	if len(got) != 8 {
		t.Errorf("%d findings, want 8:\n%s", len(got), text)
	}
	for _, secret := range []string{"XXXXSECRETXXXX", "root-token", "ci-token", "distribution-token", testEnv()["HOOK_TOKEN"]} {
		if strings.Contains(text, secret) {
			t.Errorf("a finding shows a secret (%s):\n%s", secret, text)
		}
	}

	remote := mustParse(t, head+"listen: \"127.0.0.1:8080\"\ndocker_host: tcp://10.0.0.1:2375\n")
	if fs := remote.Audit(); len(fs) != 1 || fs[0].Field != "docker_host" {
		t.Errorf("a plain tcp:// docker_host to another host: %v", fs)
	}
	proxied := mustParse(t, head+"listen: \"127.0.0.1:8080\"\ndocker_host: tcp://socket-proxy:2375\ndocker_host_insecure: true\n")
	if fs := proxied.Audit(); len(fs) != 1 || fs[0].Field != "docker_host_insecure" {
		t.Errorf("docker_host_insecure: %v", fs)
	}

	safe := mustParse(t, head+`listen: "127.0.0.1:8080"
api_listen: "10.0.0.5:8081"
metrics_listen: "127.0.0.1:9100"
engines:
  web3: {host: "ssh://deploy@10.0.0.13"}
api_tokens:
  - {name: ci, token: ci-token-0123456789abcdef01234567, scopes: ["deploy:staging", read, "logs:staging"]}
notifications:
  - {name: team, url: "https://hooks.example.com/x", format: slack}
`)
	if fs := safe.Audit(); len(fs) != 0 {
		t.Errorf("findings in a careful config: %v", fs)
	}
}

// TestRetentionConfig: history_retention's defaults, its day durations,
// and an error naming the field for each value it refuses.
func TestRetentionConfig(t *testing.T) {
	cfg := mustParse(t, head)
	if r := cfg.HistoryRetention; r.DeliveryAge != DefaultDeliveryAge || r.MaxDeliveries != DefaultMaxDeliveries || r.Deploys != DefaultDeploys {
		t.Errorf("defaults: %+v", r)
	}
	cfg = mustParse(t, head+"history_retention: {deliveries: 7d, max_deliveries: 5000, deploys: 50}\n")
	if r := cfg.HistoryRetention; r.DeliveryAge != 7*24*time.Hour || r.MaxDeliveries != 5000 || r.Deploys != 50 {
		t.Errorf("7d, 5000, 50: %+v", r)
	}
	for yaml, want := range map[string]string{
		"{deliveries: 3x}":        `history_retention.deliveries: "3x": want a duration such as "30d" or "72h"`,
		"{deliveries: 10m}":       "history_retention.deliveries: want at least 1h",
		"{max_deliveries: 10}":    "history_retention.max_deliveries: want at least 100",
		"{deploys: 1}":            "history_retention.deploys: want at least 2 per deployment",
		"{deliveries: 30d, x: 1}": `history_retention: unknown key "x"`,
	} {
		if _, err := parseString(t, head+"history_retention: "+yaml+"\n"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("history_retention: %s: %v, want %q", yaml, err, want)
		}
	}
}
