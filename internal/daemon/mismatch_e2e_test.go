package daemon_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

const genericSecret = "generic-secret-4f2a9c7e1b3d5f7a"

// mismatchConfig: NAME-web deploys staging pushes of any CI (generic).
// %[1]s prefix, %[2]s mirror, %[3]s hook token.
const mismatchConfig = `
listen: 127.0.0.1:0
hooks:
  - source: generic
    token: %[3]s
    secret: ` + genericSecret + `
registries:
  docker.io:
    mirror: %[2]s
api_tokens:
  - {name: reader, token: ` + tokRead + `, scopes: [read]}
environments:
  staging: {}
deployments:
  - name: %[1]s-web
    image: acme/%[1]s
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    health: {min_uptime: 200ms}
`

// generic delivers a signed push of tag naming digest.
func (d *daemon) generic(tag, digest string) string {
	d.t.Helper()
	body := `{"image": "docker.io/` + d.repo + `", "tag": "` + tag + `", "digest": "` + digest + `"}`
	mac := hmac.New(sha256.New, []byte(genericSecret))
	mac.Write([]byte(body))
	req, _ := http.NewRequest("POST", d.base+"/hooks/generic/"+hookToken, strings.NewReader(body))
	req.Header.Set("X-Liftoff-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a hookAnswer
	if resp.StatusCode != 202 || json.NewDecoder(resp.Body).Decode(&a) != nil || a.Accepted != 1 {
		d.t.Fatalf("generic push of %s: %d %+v", tag, resp.StatusCode, a)
	}
	return a.Delivery
}

// deployOf reads the one deploy of a delivery from the API.
func (d *daemon) deployOf(delivery string) apiv1.Deploy {
	d.t.Helper()
	status, raw := d.apiRaw(tokRead, "GET", "/api/v1/deploys?delivery="+delivery, "")
	var ds apiv1.Deploys
	if status != 200 || json.Unmarshal(raw, &ds) != nil || len(ds.Deploys) != 1 {
		d.t.Fatalf("deploys of delivery %s: %d %s", delivery, status, raw)
	}
	return ds.Deploys[0]
}

// TestDigestMismatchIsRecorded: a sender's digest that is not what the
// tag resolves to (the tag moved since) does not deploy; the registry's
// does, and the deploy in the history says what the sender reported.
func TestDigestMismatchIsRecorded(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemon(t, mismatchConfig)
	name := d.prefix + "-web"

	v1 := d.pushImage("staging", testenv.AppImage{Version: "v1"})
	delivery := d.generic("staging", v1)
	if r := d.next(); r.Outcome != deploy.Succeeded || r.Digest != v1 {
		t.Fatalf("first push: %s %s %v", r.Outcome, r.Digest, r.Err)
	}
	if dep := d.deployOf(delivery); dep.DigestMismatch || dep.ReportedDigest != "" {
		t.Errorf("a push whose digest is the tag's: %+v, want no mismatch", dep)
	}

	v2 := d.pushImage("staging", testenv.AppImage{Version: "v2"})
	v3 := d.pushImage("staging", testenv.AppImage{Version: "v3"})
	delivery = d.generic("staging", v2) // the tag moved on to v3 meanwhile
	if r := d.next(); r.Outcome != deploy.Succeeded || r.Digest != v3 {
		t.Fatalf("push naming v2: %s %s %v, want v3 deployed", r.Outcome, r.Digest, r.Err)
	}
	d.serving(name, "v3")
	dep := d.deployOf(delivery)
	if !dep.DigestMismatch || dep.ReportedDigest != v2 || dep.Digest != v3 {
		t.Errorf("the deploy in the history: digest %s, reported %q, mismatch %v; want %s, %s, true", dep.Digest, dep.ReportedDigest, dep.DigestMismatch, v3, v2)
	}
	d.logEntry("the tag resolves to another digest than the sender reported: the registry's is deployed",
		map[string]string{"reported_digest": v2, "digest": v3, "deployment": name})
}
