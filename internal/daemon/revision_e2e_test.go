package daemon_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// twoImageConfig is the two-image release: NAME-staging runs
// acme/NAME-dev:staging (dev.Dockerfile), NAME-prod runs acme/NAME:latest
// (Dockerfile) once an image of the same commit succeeded in staging.
// %[1]s prefix, %[2]s mirror, %[3]s hook token.
const twoImageConfig = configHead + `api_tokens:
  - {name: reader, token: ` + tokRead + `, scopes: [read]}
environments:
  staging: {}
  production: {}
deployments:
  - name: %[1]s-staging
    image: acme/%[1]s-dev
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    health: {min_uptime: 200ms}
  - name: %[1]s-prod
    image: acme/%[1]s
    tags: [latest]
    environment: production
    stop_timeout: 1s
    health: {min_uptime: 200ms}
    promote_from: {deployment: %[1]s-staging, match: revision}
`

// revisionImage is the test app labelled with the commit it was built from
// ("" for no label).
func revisionImage(version, revision string) testenv.AppImage {
	img := testenv.AppImage{Version: version}
	if revision != "" {
		img.Labels = map[string]string{"org.opencontainers.image.revision": revision}
	}
	return img
}

// hookRepo delivers a DockerHub push of repo:tag and waits for its deploy.
func (d *daemon) hookRepo(repo, tag string) deploy.Result {
	d.t.Helper()
	status, ans := d.post("/hooks/dockerhub/"+hookToken, testenv.DockerHubPayload(repo, tag))
	if status != 202 || ans.Accepted != 1 {
		d.t.Fatalf("push of %s:%s: %d %+v", repo, tag, status, ans)
	}
	return d.next()
}

// TestTwoImagesOneRevision: on the real engine, production's image of a
// commit deploys once staging's image of that commit succeeded, and the
// history says which staging deploy vouched for it; an image of another
// commit, or without the label, is refused and production keeps running.
func TestTwoImagesOneRevision(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemon(t, twoImageConfig)
	staging, prod := d.prefix+"-staging", d.prefix+"-prod"
	devRepo := d.repo + "-dev"
	const sha1, sha2 = "3f9a0c1d2e4b5a6978877665544332211aabbccd", "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"

	// Production before staging ran the commit: refused, nothing created.
	d.reg.Push(t, d.repo, "latest", revisionImage("prod-1", sha1))
	if r := d.hookRepo(d.repo, "latest"); r.Outcome != deploy.Refused || !strings.Contains(r.Err.Error(), "no image of revision "+sha1) {
		t.Fatalf("production first: %s %v", r.Outcome, r.Err)
	}
	if got := d.eng.Containers(t, prod); len(got) != 0 {
		t.Fatalf("a refused deploy left containers %v", got)
	}

	// Staging's image of the commit, then production's own image of it.
	stagingDigest := d.reg.Push(t, devRepo, "staging", revisionImage("dev-1", sha1))
	s := d.hookRepo(devRepo, "staging")
	if s.Outcome != deploy.Succeeded || s.Digest != stagingDigest {
		t.Fatalf("staging: %s %v", s.Outcome, s.Err)
	}
	prodDigest := d.reg.Push(t, d.repo, "latest", revisionImage("prod-1", sha1))
	r := d.hookRepo(d.repo, "latest")
	if r.Outcome != deploy.Succeeded || r.Digest != prodDigest || prodDigest == stagingDigest {
		t.Fatalf("production: %s %s %v (staging's digest %s)", r.Outcome, r.Digest, r.Err, stagingDigest)
	}
	d.serving(prod, "prod-1")
	dep := d.deployOf(r.Request.Delivery)
	stagingDeploy := d.deployOf(s.Request.Delivery)
	if v := dep.VouchedBy; v == nil || v.ID != stagingDeploy.ID || v.Deployment != staging || v.Revision != sha1 {
		t.Errorf("production's deploy vouched by %+v, want #%d of %s, revision %s", v, stagingDeploy.ID, staging, sha1)
	}

	// Another commit, or no label: refused, production untouched.
	for _, tc := range []struct{ name, revision, want string }{
		{"another commit", sha2, "no image of revision " + sha2},
		{"no label", "", "docker build --label org.opencontainers.image.revision=$GIT_SHA"},
	} {
		d.reg.Push(t, d.repo, "latest", revisionImage("prod-2", tc.revision))
		r := d.hookRepo(d.repo, "latest")
		if r.Outcome != deploy.Refused || !strings.Contains(r.Err.Error(), tc.want) {
			t.Errorf("%s: %s %v, want refused with %q", tc.name, r.Outcome, r.Err, tc.want)
		}
		d.serving(prod, "prod-1")
		if got := d.eng.Containers(t, prod); !slices.Equal(got, []string{prod + " running"}) {
			t.Errorf("%s: containers %v, want exactly [%s running]", tc.name, got, prod)
		}
	}

	// The answers say so too.
	status, raw := d.apiRaw(tokRead, "GET", "/api/v1/deploys?deployment="+prod, "")
	var ds apiv1.Deploys
	if status != 200 || json.Unmarshal(raw, &ds) != nil || len(ds.Deploys) != 4 {
		t.Fatalf("production's deploys: %d %s", status, raw)
	}
	if o := ds.Deploys[0].Outcome; o == nil || *o != "refused" || ds.Deploys[0].VouchedBy != nil {
		t.Errorf("the last refused deploy: %+v", ds.Deploys[0])
	}
}
