package payload

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// garEnvelope is a Pub/Sub push subscription's request: one message, in
// the wrapped format (the subscription's "payload unwrapping" off).
// Pub/Sub writes messageId and message_id, publishTime and publish_time
// alike; the camel-case ones are read.
type garEnvelope struct {
	Message *struct {
		Data        string `json:"data"` // base64 of garEvent
		MessageID   string `json:"messageId"`
		PublishTime string `json:"publishTime"`
	} `json:"message"`
	Subscription string `json:"subscription"`
}

// garEvent is what Artifact Registry (and Container Registry) publish on
// the project's gcr topic.
type garEvent struct {
	Action string `json:"action"` // INSERT, DELETE
	Digest string `json:"digest"` // <host>/<project>/<repo>/<image>@sha256:...
	Tag    string `json:"tag"`    // <host>/<project>/<repo>/<image>:<tag>; absent when untagged
}

// GAR reads a Google Artifact Registry notification as a Pub/Sub push
// subscription delivers it: the event is base64 JSON in message.data. An
// INSERT with a tag deploys; a DELETE with a tag is Deleted; an untagged
// INSERT or DELETE (a digest only: a platform's manifest of a multi-arch
// push, say) is skipped.
// message.messageId is the delivery's id: Pub/Sub delivers a message
// again until it is acknowledged, and a copy is a redelivery.
func GAR(h http.Header, body []byte) (Parsed, error) {
	env, err := read[garEnvelope](h, body, senderJSON)
	if err != nil {
		return Parsed{}, err
	}
	m := env.Message
	if m == nil {
		return Parsed{}, invalid("message", "missing: want a Pub/Sub push request {\"message\": {\"data\": ...}} (turn the subscription's payload unwrapping off)")
	}
	var p Parsed
	if p.ID, err = deliveryID("message.messageId", m.MessageID); err != nil {
		return Parsed{}, err
	}
	if m.Data == "" {
		return Parsed{}, invalid("message.data", "missing")
	}
	raw, err := base64.StdEncoding.DecodeString(m.Data)
	if err != nil {
		return Parsed{}, invalid("message.data", "not base64")
	}
	var ev garEvent
	if err := decode(raw, &ev, senderJSON); err != nil {
		return Parsed{}, invalid("message.data", "%v", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
	}
	c := pushes{p: &p}
	switch ev.Action {
	case "INSERT", "DELETE":
	case "":
		return Parsed{}, invalid("message.data.action", "missing: want INSERT or DELETE")
	default:
		c.skip(garTag(ev.Tag), "action"+shown(ev.Action)+": only INSERT deploys")
		return p, nil
	}
	if ev.Tag == "" || strings.Contains(ev.Tag, "@") {
		c.skip("", "untagged: nothing to deploy by tag")
		return p, nil
	}
	name, t, ok := splitRefTag(ev.Tag)
	if !ok {
		return Parsed{}, invalid("message.data.tag", "want <host>/<path>:<tag>")
	}
	where := ""
	if ev.Action == "DELETE" {
		where = "delete: "
	}
	dg, ok, err := c.tagged(where, "message.data.tag", t, "message.data.digest", garDigest(ev.Digest))
	if err != nil {
		return Parsed{}, err
	} else if !ok {
		return p, nil
	}
	if dn, _, found := strings.Cut(ev.Digest, "@"); found && dn != name {
		return Parsed{}, invalid("message.data.digest", "names another image than message.data.tag")
	}
	hostPart, _, _ := strings.Cut(name, "/")
	if _, err := host("message.data.tag", hostPart); err != nil {
		return Parsed{}, err
	}
	r, err := repo("message.data.tag", name)
	if err != nil {
		return Parsed{}, err
	}
	ps := Push{Repo: r, Tag: t, Digest: dg, PushedAt: rfc3339(m.PublishTime)}
	if ev.Action == "DELETE" {
		c.deleted(ps)
	} else {
		c.add(ps, false)
	}
	return p, nil
}

// splitRefTag splits "<name>:<tag>" at the tag's colon (not a port's).
func splitRefTag(ref string) (name, tag string, ok bool) {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || i < strings.LastIndexByte(ref, '/') {
		return "", "", false
	}
	return ref[:i], ref[i+1:], true
}

// garTag is the tag of a reference, for a skip's reason; "" if it has
// none.
func garTag(ref string) string {
	if _, t, ok := splitRefTag(ref); ok && !strings.Contains(ref, "@") {
		return t
	}
	return ""
}

// garDigest is the digest of "<name>@sha256:...", or the value itself
// when it has no '@' (for digest to refuse).
func garDigest(ref string) string {
	if ref == "" {
		return ""
	}
	if _, d, ok := strings.Cut(ref, "@"); ok {
		return d
	}
	return ref
}
