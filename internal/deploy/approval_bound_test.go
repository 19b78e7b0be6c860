package deploy

import (
	"context"
	"errors"
	"testing"
)

// TestApprovalBoundToWhatWasReviewed: a push that will await approval has
// its tag resolved as it arrives; an approval or a rejection names the
// pending request (and may name its digest) and applies only while that
// request is the one pending; the approved digest deploys, wherever the
// tag points by then.
func TestApprovalBoundToWhatWasReviewed(t *testing.T) {
	h := newHoldHarness(t)
	ctx := context.Background()
	arrive := func(tag string) {
		t.Helper()
		if _, err := h.e.Enqueue(ctx, Request{Deployment: "api", Image: "docker.io/acme/api", Tag: tag, Trigger: "dockerhub",
			Delivery: "d-" + tag}); err != nil {
			t.Fatal(err)
		}
	}
	h.rt.push("docker.io/acme/api:release", "sha256:reviewed")
	arrive("release")
	reviewed := h.pending("api")
	if reviewed.Digest != "sha256:reviewed" || reviewed.Request == 0 {
		t.Fatalf("pending: %+v, want the digest the tag had as it arrived, and an id", reviewed)
	}
	if r := h.j.request(reviewed.Request); r.Digest != "sha256:reviewed" {
		t.Errorf("journaled without its digest: %+v", r.Request)
	}

	// Seconds before the approver clicks, someone with the hook token
	// moves the tag and sends the push again: another request.
	h.rt.push("docker.io/acme/api:release", "sha256:swapped")
	arrive("release")
	swapped := h.pending("api")
	if swapped.Request == reviewed.Request || swapped.Digest != "sha256:swapped" {
		t.Fatalf("after the swap: %+v", swapped)
	}
	for _, d := range []Decision{reviewed, {Request: reviewed.Request}, {Request: swapped.Request, Digest: reviewed.Digest}} {
		if r, err := h.e.Approve(ctx, "api", "lead", d); !errors.Is(err, ErrNotThePending) || r.ID != swapped.Request {
			t.Errorf("approve %+v: %+v %v, want ErrNotThePending naming the pending push", d, r, err)
		}
		if _, err := h.e.Reject(ctx, "api", "lead", d); !errors.Is(err, ErrNotThePending) {
			t.Errorf("reject %+v: %v, want ErrNotThePending", d, err)
		}
	}
	h.none()
	if h.e.Status("api").Pending == nil {
		t.Fatal("a refused decision dropped the pending push")
	}

	// The approver looks again and approves what is pending now; the tag
	// moves once more before the deploy looks at it: the approved digest
	// deploys.
	h.rt.resolveGate = make(chan struct{})
	if _, err := h.e.Approve(ctx, "api", "lead", swapped); err != nil {
		t.Fatal(err)
	}
	h.rt.push("docker.io/acme/api:release", "sha256:later")
	close(h.rt.resolveGate)
	if res := h.next(); res.Outcome != Succeeded || res.Digest != "sha256:swapped" {
		t.Fatalf("approved deploy: %s %s %v, want sha256:swapped", res.Outcome, res.Digest, res.Err)
	}
	h.runs("api", "sha256:swapped")

	// A tag that cannot be resolved as it arrives: pending, but nothing
	// is bound to approve; it can be rejected.
	arrive("missing")
	p := h.e.Status("api").Pending
	if p == nil || p.Digest != "" {
		t.Fatalf("push of a tag the registry does not have: %+v", p)
	}
	if _, err := h.e.Approve(ctx, "api", "lead", Decision{Request: p.ID}); !errors.Is(err, ErrUnresolved) {
		t.Errorf("approve a push without digest: %v, want ErrUnresolved", err)
	}
	if _, err := h.e.Reject(ctx, "api", "lead", Decision{Request: p.ID}); err != nil {
		t.Errorf("reject a push without digest: %v", err)
	}

	// Held while paused, resolved as it arrived: once resumed it awaits
	// approval with the digest it had then.
	if err := h.e.Pause(ctx, "api", "lead"); err != nil {
		t.Fatal(err)
	}
	h.rt.push("docker.io/acme/api:release", "sha256:held")
	arrive("release")
	h.rt.push("docker.io/acme/api:release", "sha256:after-hold")
	if _, err := h.e.Unpause(ctx, "api", "lead"); err != nil {
		t.Fatal(err)
	}
	if got := h.pending("api"); got.Digest != "sha256:held" {
		t.Errorf("held, then pending: %+v, want sha256:held", got)
	}
	h.none()
}
