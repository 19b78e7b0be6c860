package deploy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

// Vouched makes rcJournal a Journal (vouch.go).
func (j *rcJournal) Vouched(ctx context.Context, deployment, label, revision string) (Record, bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var best Record
	for _, r := range j.recs {
		if r.Deployment == deployment && (r.Outcome == Succeeded || r.Outcome == Unchanged) &&
			r.Revisions[label] == revision && r.ID > best.ID {
			best = r
		}
	}
	return best, best.ID != 0, nil
}

// labeledRuntime is a fakeRuntime whose images have labels, by digest.
type labeledRuntime struct {
	*fakeRuntime
	labels map[string]map[string]string
}

func (l *labeledRuntime) ImageInfo(ctx context.Context, ref string) (ImageInfo, error) {
	if err := l.call("image_info", ref); err != nil {
		return ImageInfo{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, digest, _ := strings.Cut(ref, "@")
	return ImageInfo{Labels: l.labels[digest]}, nil
}

// twoImageConfig: web-staging runs acme/web-dev's staging tag; web-prod
// runs acme/web's latest once the same revision succeeded in staging.
const twoImageConfig = `
environments:
  staging: {}
  production: {}
deployments:
  - name: web-staging
    image: acme/web-dev
    tags: [staging]
    environment: staging
    health: {min_uptime: 10ms}
  - name: web-prod
    image: acme/web
    tags: [latest]
    environment: production
    health: {min_uptime: 10ms}
    promote_from: {deployment: web-staging, match: revision}
`

const revLabel = deployments.DefaultRevisionLabel

func TestRevisionPromotion(t *testing.T) {
	cfg, err := deployments.Parse([]byte(twoImageConfig), t.TempDir(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	rt := &labeledRuntime{fakeRuntime: newFakeRuntime(), labels: map[string]map[string]string{}}
	j := newRCJournal()
	e := newRCEngine(t, cfg, rt, j, nil)
	push := func(deployment, repo, tag, digest, revision string) Result {
		t.Helper()
		rt.push("docker.io/acme/"+repo+":"+tag, digest)
		rt.mu.Lock()
		if revision != "" {
			rt.labels[digest] = map[string]string{revLabel: revision, "other": "x"}
		}
		rt.mu.Unlock()
		if _, err := e.Enqueue(context.Background(), Request{Deployment: deployment, Image: "docker.io/acme/" + repo, Tag: tag, Trigger: "dockerhub"}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-e.results:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no deploy finished")
			return Result{}
		}
	}

	// Production before staging ran that revision: refused, nothing started.
	r := push("web-prod", "web", "latest", "sha256:prod-a", "aaa111")
	if r.Outcome != Refused || !strings.Contains(r.Err.Error(), "no image of revision aaa111") {
		t.Fatalf("production first: %s %v", r.Outcome, r.Err)
	}
	if _, ok := rt.get("web-prod"); ok {
		t.Fatal("a refused deploy created the container")
	}

	// Staging's image of the revision succeeds, and records its revision.
	s := push("web-staging", "web-dev", "staging", "sha256:dev-a", "aaa111")
	if s.Outcome != Succeeded {
		t.Fatalf("staging: %s %v", s.Outcome, s.Err)
	}
	var stagingID int64
	for id, rec := range j.recs {
		if rec.Deployment == "web-staging" && rec.Outcome == Succeeded {
			stagingID = id
			if len(rec.Revisions) != 1 || rec.Revisions[revLabel] != "aaa111" {
				t.Errorf("staging's revisions %v, want only %s=aaa111", rec.Revisions, revLabel)
			}
		}
	}

	// Now production takes its own image of that revision, vouched for.
	r = push("web-prod", "web", "latest", "sha256:prod-a2", "aaa111")
	if r.Outcome != Succeeded {
		t.Fatalf("production after staging: %s %v", r.Outcome, r.Err)
	}
	for _, rec := range j.recs {
		if rec.Deployment == "web-prod" && rec.Outcome == Succeeded && (rec.VouchedBy != stagingID || rec.VouchedRevision != "aaa111") {
			t.Errorf("production's deploy: vouched by %d (%s), want %d (aaa111)", rec.VouchedBy, rec.VouchedRevision, stagingID)
		}
	}

	// Another revision, or none, is refused and production keeps running.
	for _, tc := range []struct{ digest, revision, want string }{
		{"sha256:prod-b", "bbb222", "no image of revision bbb222"},
		{"sha256:prod-c", "", "docker build --label " + revLabel + "=$GIT_SHA"},
	} {
		r := push("web-prod", "web", "latest", tc.digest, tc.revision)
		if r.Outcome != Refused || !strings.Contains(r.Err.Error(), tc.want) {
			t.Errorf("%s: %s %v, want refused with %q", tc.digest, r.Outcome, r.Err, tc.want)
		}
		if c, ok := rt.get("web-prod"); !ok || !c.Running || c.Labels[LabelDigest] != "sha256:prod-a2" {
			t.Errorf("%s: production runs %v, want sha256:prod-a2 still", tc.digest, c.Labels[LabelDigest])
		}
	}
	if n := rt.count("stop"); n != 0 {
		t.Errorf("%d stops: a refused promotion stopped something", n)
	}
}
