package deployments

import (
	"strings"
	"testing"
	"time"
)

func TestPollIntervals(t *testing.T) {
	c := mustParse(t, head+`registries:
  index.docker.io: {poll_interval: 10m}
  ghcr.io: {poll_interval: 30s}
deployments:
  - {name: own, image: acme/web, tags: [staging], poll: {interval: 5m}}
  - {name: hub, image: acme/web, tags: [latest]}
  - {name: fast, image: ghcr.io/acme/web, tags: ["semver:^1"]}
  - {name: none, image: quay.io/acme/web, tags: [x]}
  - {name: hubfast, image: nginx, tags: [x], poll: {interval: 2s}}
`)
	for name, want := range map[string]time.Duration{"own": 5 * time.Minute, "hub": 10 * time.Minute, "fast": 30 * time.Second, "none": 0, "hubfast": 2 * time.Second} {
		if got := c.Deployment(name).PollInterval(); got != want {
			t.Errorf("%s: PollInterval %s, want %s", name, got, want)
		}
	}
	if r := c.Deployment("none").PollRules(); r != nil {
		t.Errorf("a deployment not polled has rules %v", r)
	}
	if r := c.Deployment("fast").PollRules(); len(r) != 1 || !r[0].Semver() || r[0].String() != "semver:^1" {
		t.Errorf("PollRules = %v", r)
	}
	w := strings.Join(c.ValidatePolicies(), "\n")
	if !strings.Contains(w, "deployments[4] (hubfast): polls docker.io every 2s") || strings.Contains(w, "(own)") || strings.Contains(w, "(fast)") {
		t.Errorf("warnings:\n%s", w)
	}
}

func TestPollIntervalErrors(t *testing.T) {
	_, err := parseString(t, head+`registries:
  docker.io: {poll_interval: 500ms}
deployments:
  - {name: a, image: acme/web, tags: [x], poll: {interval: 100ms}}
  - {name: b, image: acme/web, tags: [y], poll: {}}
  - {name: c, image: acme/web, tags: [z], poll: {interval: -1s}}
`)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"registries.docker.io.poll_interval: 500ms: want 0 (no poll) or at least 1s",
		"deployments[0].poll.interval: 100ms: want at least 1s",
		"deployments[1].poll.interval: 0s: want at least 1s",
		"deployments[2].poll.interval: -1s: want at least 1s",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
