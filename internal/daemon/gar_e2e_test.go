package daemon_test

import (
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/testenv"
)

// garConfig: NAME-web deploys the staging tag of the test registry's
// acme/NAME, told by Pub/Sub pushes. %[1]s prefix, %[2]s the registry
// (here the image's own host), %[3]s hook token.
const garConfig = `
listen: 127.0.0.1:0
hooks:
  - source: gar
    token: %[3]s
environments:
  staging: {}
deployments:
  - name: %[1]s-web
    image: %[2]s/acme/%[1]s
    tags: [staging]
    environment: staging
    stop_timeout: 1s
    health: {min_uptime: 200ms}
`

// pubsub posts a Pub/Sub push of an Artifact Registry event.
func (d *daemon) pubsub(messageID, event string) (int, hookAnswer) {
	d.t.Helper()
	body := `{"message": {"attributes": {}, "data": "` + base64.StdEncoding.EncodeToString([]byte(event)) + `", "messageId": "` + messageID +
		`", "message_id": "` + messageID + `", "publishTime": "2026-12-07T03:12:34.567Z"}, "subscription": "projects/acme/subscriptions/liftoff"}`
	return d.post("/hooks/gar/"+hookToken, body)
}

// TestGARPushDeploys: on the real engine, a Pub/Sub push of an INSERT
// deploys the tag; Pub/Sub's redelivery of the message deploys nothing
// more; a DELETE and a digest-only INSERT are acknowledged and deploy
// nothing.
func TestGARPushDeploys(t *testing.T) {
	testenv.Slow(t)
	t.Parallel()
	d := startDaemon(t, garConfig)
	name := d.prefix + "-web"
	image := d.reg.Host() + "/" + d.repo
	digest := d.pushImage("staging", testenv.AppImage{Version: "v1"})

	insert := `{"action": "INSERT", "digest": "` + image + `@` + digest + `", "tag": "` + image + `:staging"}`
	if status, ans := d.pubsub("4471298364112", insert); status != http.StatusAccepted || ans.Accepted != 1 {
		t.Fatalf("INSERT: %d %+v", status, ans)
	}
	if r := d.next(); r.Outcome != deploy.Succeeded || r.Digest != digest || r.Request.Deployment != name {
		t.Fatalf("deploy of %s: %s %s %v", r.Request.Deployment, r.Outcome, r.Digest, r.Err)
	}
	d.serving(name, "v1")

	if status, ans := d.pubsub("4471298364112", insert); status != http.StatusOK || ans.Ignored != 1 || !ans.Redelivery {
		t.Errorf("the message again: %d %+v, want 200, a redelivery", status, ans)
	}
	for id, ev := range map[string]string{
		"4471298364113": `{"action": "DELETE", "tag": "` + image + `:staging"}`,
		"4471298364114": `{"action": "INSERT", "digest": "` + image + `@` + digest + `"}`,
	} {
		if status, ans := d.pubsub(id, ev); status != http.StatusAccepted || ans.Accepted != 0 || ans.Ignored == 0 {
			t.Errorf("%s: %d %+v, want 202 with nothing deployed", ev, status, ans)
		}
	}
	d.quiet()
	d.only(name)
}
