package payload

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHarbor(t *testing.T) {
	const def, ce = "default_push.json", "cloudevents_push.json"
	index, arm := dg("harbor-web-2.0.1"), dg("harbor-web-arm")
	at := time.Unix(1765077131, 0).UTC()
	web := func(tag string, at time.Time) Push {
		return Push{Repo: "harbor.example.com/library/web", Tag: tag, Digest: index, Pusher: "robot$library+ci", PushedAt: at}
	}
	ceAt := time.Date(2026, 12, 7, 3, 12, 11, 0, time.UTC)
	ceID := "4b2f89a6-548d-4c12-9993-a1f5790b97d2"
	ceHeader := http.Header{"Content-Type": {mediaCloudEvents}}
	binary := http.Header{"Content-Type": {"application/json"}, "Ce-Specversion": {"1.0"}, "Ce-Type": {"harbor.artifact.pushed"},
		"Ce-Id": {ceID}, "Ce-Time": {"2026-12-07T03:12:11Z"}, "Ce-Operator": {"robot$library+ci"}, "Ce-Source": {"/projects/1/webhook/policies/3"}}
	h := func(pathValues ...any) string { return edited(t, "harbor", def, pathValues...) }
	res0 := "event_data.resources.0."
	resources := make([]any, 1001)
	for i := range resources {
		resources[i] = map[string]any{"tag": "v" + strconv.Itoa(i), "digest": index, "resource_url": "harbor.example.com/library/web:v" + strconv.Itoa(i)}
	}

	cases := []parseCase{
		{name: "default format: two tags and an untagged artifact", body: string(fixture(t, "harbor", def)), want: Parsed{
			Pushes:  []Push{web("2.0.1", at), web("stable", at)},
			Skipped: []Skip{{Tag: arm, Reason: "event_data.resources[2]: untagged: the tag is a digest"}}}},
		{name: "CloudEvents, structured", header: ceHeader, body: string(fixture(t, "harbor", ce)), want: Parsed{ID: ceID,
			Pushes:  []Push{web("2.0.1", ceAt), web("stable", ceAt)},
			Skipped: []Skip{{Tag: arm, Reason: "data.resources[2]: untagged: the tag is a digest"}}}},
		{name: "CloudEvents, binary", header: binary, body: string(fixture(t, "harbor", "cloudevents_binary_data.json")),
			want: Parsed{ID: ceID, Pushes: []Push{web("2.0.1", ceAt)}}},
		{name: "CloudEvents, binary, an invalid tag", header: binary, body: `{"resources": [{"tag": "-x"}], "repository": {"repo_full_name": "library/web"}}`,
			err: `resources[0].tag: invalid tag "-x"`},
		{name: "CloudEvents, binary, an array", header: binary, body: `[]`, err: "body: want a JSON object"},
		{name: "a pull", body: string(fixture(t, "harbor", "default_pull.json")),
			want: Parsed{Skipped: []Skip{{Reason: `event type "PULL_ARTIFACT": only an artifact push deploys`}}}},
		{name: "a CloudEvent of a scan", header: ceHeader, body: edited(t, "harbor", ce, "type", "harbor.scan.completed"),
			want: Parsed{ID: ceID, Skipped: []Skip{{Reason: `event type "harbor.scan.completed": only an artifact push deploys`}}}},
		{name: "no repo_full_name: namespace and name", body: h("event_data.repository.repo_full_name", remove, "event_data.resources", []any{
			map[string]any{"tag": "2.0.1", "digest": index, "resource_url": "harbor.example.com/library/web:2.0.1"}}),
			want: Parsed{Pushes: []Push{web("2.0.1", at)}}},
		{name: "a signature tag", body: h("event_data.resources", []any{map[string]any{"tag": "sha256-" + index[7:] + ".sig",
			"resource_url": "harbor.example.com/library/web:sha256-" + index[7:] + ".sig"}}),
			want: Parsed{Skipped: []Skip{{Tag: "sha256-" + index[7:] + ".sig", Reason: "event_data.resources[0]: signature or attestation tag"}}}},
		{name: "a port in the host", body: h("event_data.resources", []any{map[string]any{"tag": "2.0.1", "digest": index,
			"resource_url": "Harbor.Example.com:8443/library/web:2.0.1"}}),
			want: Parsed{Pushes: []Push{{Repo: "harbor.example.com:8443/library/web", Tag: "2.0.1", Digest: index, Pusher: "robot$library+ci", PushedAt: at}}}},

		{name: "event_data and data", body: h("data", map[string]any{}), err: "body: both event_data and a CloudEvent's data"},
		{name: "specversion and event_data", body: h("specversion", "1.0"), err: "body: both event_data"},
		{name: "no resources", body: h("event_data.resources", remove), err: "event_data.resources: missing"},
		{name: "no event_data", body: h("event_data", remove), err: "event_data.resources: missing"},
		{name: "CloudEvent without data", header: ceHeader, body: edited(t, "harbor", ce, "data", nil), err: "data.resources: missing"},
		{name: "1001 resources", body: h("event_data.resources", resources), err: "event_data.resources: more than 1000 entries"},
		{name: "no repository", body: h("event_data.repository", map[string]any{}), err: "event_data.repository.repo_full_name: missing"},
		{name: "resource_url of another repository", body: h(res0+"resource_url", "harbor.example.com/library/evil:2.0.1"),
			err: "event_data.resources[0].resource_url: want <host>/<repository.repo_full_name>:<tag>"},
		{name: "resource_url of another tag", body: h(res0+"resource_url", "harbor.example.com/library/web:stable"),
			err: "event_data.resources[0].resource_url: want <host>"},
		{name: "no resource_url", body: h(res0+"resource_url", remove), err: "event_data.resources[0].resource_url: missing"},
		{name: "resource_url without a host", body: h(res0+"resource_url", "harbor/library/web:2.0.1"),
			err: `event_data.resources[0].resource_url: want a registry host[:port] "harbor"`},
		{name: "invalid tag", body: h(res0+"tag", "-2.0.1"), err: `event_data.resources[0].tag: invalid tag "-2.0.1"`},
		{name: "invalid digest", body: h(res0+"digest", "sha256:"+strings.Repeat("A", 64)), err: "event_data.resources[0].digest: want sha256:"},
		{name: "invalid repository", body: h("event_data.repository.repo_full_name", "library/Web", res0+"resource_url", "harbor.example.com/library/Web:2.0.1"),
			err: `event_data.resources[0].resource_url: invalid repository "harbor.example.com/library/Web"`},
		{name: "a CloudEvent id too long", header: ceHeader, body: edited(t, "harbor", ce, "id", strings.Repeat("a", 129)), err: "id: want at most 128"},
		{name: "occur_at a string", body: h("occur_at", "1765077131"), err: "occur_at: want number, got string"},
		{name: "occur_at a fraction", body: h("occur_at", 1.5), err: "occur_at: "},
		{name: "tag twice", body: strings.Replace(string(fixture(t, "harbor", def)), `"tag": "2.0.1",`, `"tag": "2.0.1", "tag": "evil",`, 1),
			err: `event_data.resources[0]: duplicate key "tag"`},
		{name: "resource_url and Resource_URL", body: strings.Replace(string(fixture(t, "harbor", def)), `"resource_url": "harbor.example.com/library/web:2.0.1"`,
			`"resource_url": "harbor.example.com/library/web:2.0.1", "Resource_URL": "evil.example.com/library/web:2.0.1"`, 1),
			err: `event_data.resources[0]: duplicate key "Resource_URL"`},
	}
	runCases(t, Harbor, http.Header{"Content-Type": {"application/json"}}, cases)
}
