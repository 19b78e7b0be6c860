package payload

import (
	stdjson "encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// distEvent is one event as a registry writes it, for push or pull of a
// manifest (media) in acme/web on registry.example.com.
func distEv(action, media, tag, digest string) map[string]any {
	target := map[string]any{"mediaType": media, "digest": digest, "size": 1152, "length": 1152, "repository": "acme/web",
		"url": "https://registry.example.com/v2/acme/web/manifests/" + digest}
	if tag != "" {
		target["tag"] = tag
	}
	return map[string]any{"id": "5e1d2a44-0f2b-4c1e-9a7d-" + digest[7:19], "timestamp": "2026-12-07T03:12:11.5Z", "action": action,
		"target": target, "request": map[string]any{"id": "r1", "host": "registry.example.com", "method": "PUT"},
		"actor": map[string]any{"name": "ci-bot"}}
}

// envelope is a body holding events; each edit sets a key of the first
// event's: "request.host", "example.org".
func envelope(events []map[string]any, edits ...string) string {
	for i := 0; i < len(edits); i += 2 {
		outer, inner, ok := strings.Cut(edits[i], ".")
		if ok {
			events[0][outer].(map[string]any)[inner] = edits[i+1]
		} else {
			events[0][outer] = edits[i+1]
		}
	}
	b, _ := stdjson.Marshal(map[string]any{"events": events})
	return string(b)
}

func TestDistribution(t *testing.T) {
	const index, manifest = mediaOCIIndex, mediaOCIManifest
	web := func(digest string) Push {
		return Push{Repo: "registry.example.com/acme/web", Tag: "3.1.0", Digest: digest, Pusher: "ci-bot",
			PushedAt: time.Date(2026, 12, 7, 3, 12, 11, 5e8, time.UTC)}
	}
	one := func(edits ...string) string {
		return envelope([]map[string]any{distEv("push", index, "3.1.0", dg("i"))}, edits...)
	}
	id := "5e1d2a44-0f2b-4c1e-9a7d-" + dg("i")[7:19]
	layer := "application/vnd.oci.image.layer.v1.tar+gzip"
	blob := func(i int, media string) Skip {
		return Skip{Reason: "events[" + strconv.Itoa(i) + `]: not a manifest (a blob or an artifact): "` + media + `"`}
	}
	untagged := func(i int) Skip {
		return Skip{Reason: "events[" + strconv.Itoa(i) + "]: untagged: nothing to deploy by tag"}
	}
	action := func(i int, tag, a string) Skip {
		return Skip{Tag: tag, Reason: "events[" + strconv.Itoa(i) + `]: action "` + a + `"`}
	}
	config := "application/vnd.oci.image.config.v1+json"
	sig := "sha256-" + dg("worker-index")[7:] + ".sig"
	pulls := make([]map[string]any, 1000)
	for i := range pulls {
		pulls[i] = distEv("pull", index, "3.1.0", dg("i"))
	}
	pullSkips := make([]Skip, 1000)
	for i := range pullSkips {
		pullSkips[i] = action(i, "3.1.0", "pull")
	}

	cases := []parseCase{
		{name: "a v2 registry's batch: 20 events, one deploys", body: string(fixture(t, "distribution", "batch_v1.json")), want: Parsed{
			Pushes: []Push{{Repo: "registry.example.com:5000/team/api", Tag: "2.7.0", Digest: dg("api-index-2.7.0"), Pusher: "ci-bot",
				PushedAt: time.Date(2026, 12, 7, 3, 12, 10, 123456799, time.UTC)}},
			Skipped: []Skip{blob(0, layer), blob(1, layer), blob(2, layer), blob(3, layer), blob(4, layer), blob(5, layer),
				blob(6, config), blob(7, config), untagged(8), untagged(9),
				action(11, "2.6.1", "pull"), action(12, "", "pull"), action(13, "", "pull"), action(14, "", "pull"),
				action(15, "", "mount"), blob(16, layer), untagged(17),
				{Tag: sig, Reason: "events[18]: signature or attestation tag"}, action(19, "", "delete")},
		}},
		{name: "a v3 registry's single event", header: http.Header{"Content-Type": {mediaEventsV2}},
			body: string(fixture(t, "distribution", "single_v3.json")), want: Parsed{ID: "c0a80000-5f1e-4f7a-9f0e-8d2b1c3e0000", Pushes: []Push{{
				Repo: "registry.example.com:5000/acme/web", Tag: "3.1.0", Digest: dg("web-list-3.1.0"), Pusher: "ci-bot",
				PushedAt: time.Date(2026, 12, 7, 3, 12, 0, 123456789, time.UTC)}}}},
		{name: "a v3 registry's tag delete", header: http.Header{"Content-Type": {mediaEventsV2}},
			body: string(fixture(t, "distribution", "delete_tag_v3.json")), want: Parsed{ID: "7d1f3c20-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
				Deleted: []Push{{Repo: "registry.example.com:5000/acme/web", Tag: "pr-12", Pusher: "ci-bot",
					PushedAt: time.Date(2026, 12, 7, 4, 1, 2, 5e8, time.UTC)}}}},
		{name: "a tag delete beside a push, each once", body: envelope([]map[string]any{
			distEv("delete", "", "pr-1", dg("d")), distEv("push", index, "3.1.0", dg("i")), distEv("delete", "", "pr-1", dg("d"))}),
			want: Parsed{Pushes: []Push{web(dg("i"))}, Deleted: []Push{{Repo: "registry.example.com/acme/web", Tag: "pr-1", Pusher: "ci-bot",
				PushedAt: web("").PushedAt}}}},
		{name: "a delete of a signature tag", body: envelope([]map[string]any{distEv("delete", "", sig, dg("d"))}),
			want: Parsed{ID: "5e1d2a44-0f2b-4c1e-9a7d-" + dg("d")[7:19], Skipped: []Skip{{Tag: sig, Reason: "events[0]: delete: signature or attestation tag"}}}},
		{name: "a delete liftoff cannot read is skipped", body: envelope([]map[string]any{distEv("delete", "", "pr-1", dg("d"))}, "request.host", "registry"),
			want: Parsed{ID: "5e1d2a44-0f2b-4c1e-9a7d-" + dg("d")[7:19], Skipped: []Skip{{Tag: "pr-1", Reason: `events[0].request.host: want a registry host[:port] "registry"`}}}},
		{name: "plain JSON", header: http.Header{"Content-Type": {"application/json"}}, body: one(), want: Parsed{ID: id, Pushes: []Push{web(dg("i"))}}},
		{name: "no Content-Type", header: http.Header{}, body: one(), want: Parsed{ID: id, Pushes: []Push{web(dg("i"))}}},
		{name: "one tag twice: the index's digest", body: envelope([]map[string]any{
			distEv("push", manifest, "3.1.0", dg("m1")), distEv("push", index, "3.1.0", dg("i")), distEv("push", manifest, "3.1.0", dg("m2"))}),
			want: Parsed{Pushes: []Push{web(dg("i"))}}},
		{name: "one tag twice, no index: the last digest", body: envelope([]map[string]any{
			distEv("push", manifest, "3.1.0", dg("m1")), distEv("push", mediaDockerManifest, "3.1.0", dg("m2"))}),
			want: Parsed{Pushes: []Push{web(dg("m2"))}}},
		{name: "host from target.url", body: one("request.host", ""), want: Parsed{ID: id, Pushes: []Push{web(dg("i"))}}},
		{name: "host lower-cased", body: one("request.host", "Registry.Example.COM"), want: Parsed{ID: id, Pushes: []Push{web(dg("i"))}}},
		{name: "a pull's fields are not checked", body: envelope([]map[string]any{distEv("pull", index, "bad tag", dg("i"))},
			"target.digest", "md5:x", "request.host", "registry", "target.repository", "Acme/Web"),
			want: Parsed{ID: id, Skipped: []Skip{{Reason: `events[0]: action "pull"`}}}},
		{name: "an id liftoff would not store is dropped", body: one("id", "a\nb"), want: Parsed{Pushes: []Push{web(dg("i"))}}},
		{name: "1000 events", body: envelope(pulls), want: Parsed{Skipped: pullSkips}},
		{name: "empty", body: `{"events": []}`, want: Parsed{}},

		{name: "1001 events", body: envelope(append(pulls, distEv("pull", index, "", dg("i")))), err: "events: more than 1000 entries"},
		{name: "no events", body: `{"event": []}`, err: "events: missing"},
		{name: "events null", body: `{"events": null}`, err: "events: missing"},
		{name: "events an object", body: `{"events": {"0": {}}}`, err: "events: want array, got object"},
		{name: "an event a string", body: `{"events": ["push"]}`, err: "events[0]: want object, got string"},
		// A push liftoff cannot take is skipped with why, never refused:
		// the registry would retry it forever and hold up the rest.
		{name: "no host", body: one("request.host", "", "target.url", ""), skip: "events[0].request.host: missing, and no target.url"},
		{name: "a host that is a namespace", body: one("request.host", "registry"), skip: `events[0].request.host: want a registry host[:port] "registry"`},
		{name: "a host with a path", body: one("request.host", "evil.example/x"), skip: "events[0].request.host: want a registry host[:port]"},
		{name: "target.url not http", body: one("request.host", "", "target.url", "file:///etc/passwd"), skip: "events[0].target.url: want http(s)"},
		{name: "invalid tag", body: one("target.tag", "3.1.0:latest"), skip: `events[0].target.tag: invalid tag "3.1.0:latest"`},
		{name: "invalid digest", body: one("target.digest", "md5:abc"), skip: "events[0].target.digest: want sha256:"},
		{name: "no repository", body: one("target.repository", ""), skip: "events[0].target.repository: missing"},
		{name: "invalid repository", body: one("target.repository", "Acme/Web"), skip: `events[0].target.repository: invalid repository "registry.example.com/Acme/Web"`},
		{name: "tag twice", body: strings.Replace(one(), `"tag":"3.1.0"`, `"tag":"3.1.0","tag":"evil"`, 1), err: `events[0].target: duplicate key "tag"`},
		{name: "mediaType and mediatype", body: strings.Replace(one(), `"mediaType":`, `"mediatype":"x","mediaType":`, 1),
			err: `events[0].target: duplicate key "mediaType"`},
		{name: "events and Events", body: `{"events": [], "Events": []}`, err: `body: duplicate key "Events"`},
		{name: "tag is a number", body: strings.Replace(one(), `"tag":"3.1.0"`, `"tag":310`, 1), err: "events[0].target.tag: want string, got number"},
	}
	runCases(t, Distribution, http.Header{"Content-Type": {mediaEventsV1}}, cases)
}
