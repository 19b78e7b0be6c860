package payload

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"
)

// garData is a Pub/Sub push of the insert fixture whose message.data
// holds data, as is (base64 of JSON, or not).
func garData(t *testing.T, data string) string {
	t.Helper()
	return edited(t, "gar", "insert_tagged.json", "message.data", data)
}

// garEventBody is a push whose event is the JSON text ev.
func garEventBody(t *testing.T, ev string) string {
	return garData(t, base64.StdEncoding.EncodeToString([]byte(ev)))
}

func TestGAR(t *testing.T) {
	const (
		img = "europe-west1-docker.pkg.dev/acme-prod/apps/web"
		d   = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b"
		id  = "11913873829364722"
	)
	web := Push{Repo: img, Tag: "v42", Digest: d, PushedAt: time.Date(2026, 12, 7, 3, 12, 34, 567000000, time.UTC)}
	ev := func(action, digest, tag string) string {
		return garEventBody(t, `{"action": "`+action+`", "digest": "`+digest+`", "tag": "`+tag+`"}`)
	}
	in := func(repo, tag string) Parsed {
		p := web
		p.Repo, p.Tag = repo, tag
		return Parsed{ID: id, Pushes: []Push{p}}
	}
	cases := []parseCase{
		{name: "a tagged push", body: string(fixture(t, "gar", "insert_tagged.json")), want: Parsed{ID: id, Pushes: []Push{web}}},
		{name: "an untagged push", body: string(fixture(t, "gar", "insert_untagged.json")),
			want: Parsed{ID: "11913873829364723", Skipped: []Skip{{Reason: "untagged: nothing to deploy by tag"}}}},
		{name: "a delete", body: string(fixture(t, "gar", "delete.json")),
			want: Parsed{ID: "11913873829364724", Deleted: []Push{{Repo: "europe-west1-docker.pkg.dev/acme-prod/apps/web", Tag: "v41",
				PushedAt: time.Date(2026, 12, 7, 3, 12, 34, 567e6, time.UTC)}}}},
		{name: "an untagged delete", body: ev("DELETE", img+"@"+d, ""),
			want: Parsed{ID: id, Skipped: []Skip{{Reason: "untagged: nothing to deploy by tag"}}}},
		{name: "a delete of a signature tag", body: ev("DELETE", img+"@"+d, img+":sha256-"+d[7:]+".sig"),
			want: Parsed{ID: id, Skipped: []Skip{{Tag: "sha256-" + d[7:] + ".sig", Reason: "delete: signature or attestation tag"}}}},
		{name: "another action", body: ev("UPDATE", img+"@"+d, img+":v42"),
			want: Parsed{ID: id, Skipped: []Skip{{Tag: "v42", Reason: `action "UPDATE": only INSERT deploys`}}}},
		{name: "a digest where the tag should be", body: ev("INSERT", img+"@"+d, img+"@"+d),
			want: Parsed{ID: id, Skipped: []Skip{{Reason: "untagged: nothing to deploy by tag"}}}},
		{name: "Container Registry's gcr.io", body: ev("INSERT", "gcr.io/acme-prod/web@"+d, "gcr.io/acme-prod/web:v42"),
			want: in("gcr.io/acme-prod/web", "v42")},
		{name: "a host with a port", body: ev("INSERT", "localhost:5000/web@"+d, "localhost:5000/web:v42"),
			want: in("localhost:5000/web", "v42")},
		{name: "no digest", body: garEventBody(t, `{"action": "INSERT", "tag": "`+img+`:v42"}`),
			want: Parsed{ID: id, Pushes: []Push{{Repo: img, Tag: "v42", PushedAt: web.PushedAt}}}},
		{name: "a signature tag", body: ev("INSERT", img+"@"+d, img+":sha256-"+d[7:]+".sig"),
			want: Parsed{ID: id, Skipped: []Skip{{Tag: "sha256-" + d[7:] + ".sig", Reason: "signature or attestation tag"}}}},
		{name: "message_id and messageId alike", body: strings.Replace(string(fixture(t, "gar", "insert_tagged.json")),
			`"message_id": "11913873829364722"`, `"message_id": "other"`, 1), want: Parsed{ID: id, Pushes: []Push{web}}},

		{name: "no action", body: garEventBody(t, `{"tag": "`+img+`:v42"}`), err: "message.data.action: missing"},
		{name: "no message", body: `{"subscription": "projects/p/subscriptions/s"}`, err: "message: missing: want a Pub/Sub push request"},
		{name: "payload unwrapping on", body: `{"action": "INSERT", "tag": "` + img + `:v42"}`, err: "turn the subscription's payload unwrapping off"},
		{name: "no data", body: garData(t, ""), err: "message.data: missing"},
		{name: "data not base64", body: garData(t, "not base64!"), err: "message.data: not base64"},
		{name: "data not JSON", body: garData(t, base64.StdEncoding.EncodeToString([]byte("INSERT"))), err: "message.data: body: want a JSON object"},
		{name: "data with a duplicate key", body: garEventBody(t, `{"action": "INSERT", "tag": "`+img+`:v42", "Tag": "`+img+`:evil"}`),
			err: `message.data: body: duplicate key "Tag"`},
		{name: "a tag without its name", body: ev("INSERT", img+"@"+d, "v42"), err: "message.data.tag: want <host>/<path>:<tag>"},
		{name: "a host without a dot", body: ev("INSERT", "registry/web@"+d, "registry/web:v42"), err: "message.data.tag: want a registry host"},
		{name: "an invalid tag", body: ev("INSERT", img+"@"+d, img+":v42!"), err: "message.data.tag: invalid tag"},
		{name: "an invalid repository", body: ev("INSERT", "gcr.io/Acme//web@"+d, "gcr.io/Acme//web:v42"), err: "message.data.tag: invalid repository"},
		{name: "a short digest", body: ev("INSERT", img+"@sha256:abc", img+":v42"), err: "message.data.digest: want sha256:<64"},
		{name: "a digest of another image", body: ev("INSERT", "gcr.io/acme-prod/other@"+d, img+":v42"),
			err: "message.data.digest: names another image than message.data.tag"},
		{name: "a messageId with a space", body: edited(t, "gar", "insert_tagged.json", "message.messageId", "119 13"), err: "message.messageId: want at most 128"},
		{name: "message an array", body: `{"message": []}`, err: "message: want object, got array"},
	}
	runCases(t, GAR, http.Header{"Content-Type": {"application/json"}}, cases)
}
