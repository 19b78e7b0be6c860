package payload_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"

	"github.com/liftoff-deploy/liftoff/internal/payload"
)

// A GitHub delivery is checked against its signature before it is read;
// a ping deploys nothing, and each push is matched against the
// deployments.
func ExampleGHCR() {
	secret := []byte("It's a Secret to Everybody")
	body := []byte(`{"action": "published", "package": {"name": "web", "namespace": "acme", "package_type": "CONTAINER",
		"package_version": {"package_url": "ghcr.io/acme/web:v1.4.2", "container_metadata": {"tag": {"name": "v1.4.2", "digest": ""}}}},
		"sender": {"login": "octo-dev"}}`)
	h := http.Header{}
	h.Set("X-GitHub-Event", "package")
	h.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	mac := hmac.New(sha256.New, secret) // what GitHub does
	mac.Write(body)
	h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))

	if err := payload.VerifySignature(secret, h.Get("X-Hub-Signature-256"), body); err != nil {
		fmt.Println("401:", err) // errors.Is(err, payload.ErrSignature)
		return
	}
	p, err := payload.GHCR(h, body)
	switch {
	case errors.Is(err, payload.ErrInvalid):
		fmt.Println("400:", err)
	case p.Ping:
		fmt.Println("200: pong")
	default:
		for _, push := range p.Pushes {
			fmt.Printf("deploy %s:%s (delivery %s, pushed by %s)\n", push.Repo, push.Tag, p.ID, push.Pusher)
		}
		for _, s := range p.Skipped {
			fmt.Println("skip:", s.Reason)
		}
	}
	// Output:
	// deploy ghcr.io/acme/web:v1.4.2 (delivery 72d3162e-cc78-11e3-81ab-4c9367dc0958, pushed by octo-dev)
}
