package payload

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestECR(t *testing.T) {
	const ok = "push_success.json"
	id := "13cde686-328b-6117-af20-0e5566167482"
	web := Push{Repo: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/web", Tag: "v42", Digest: dg("ecr-web-v42"),
		PushedAt: time.Date(2026, 12, 7, 3, 12, 34, 0, time.UTC)}
	e := func(pathValues ...any) string { return edited(t, "ecr", ok, pathValues...) }
	in := func(repo string) Parsed {
		p := web
		p.Repo = repo
		return Parsed{ID: id, Pushes: []Push{p}}
	}

	cases := []parseCase{
		{name: "a successful push", body: string(fixture(t, "ecr", ok)), want: Parsed{ID: id, Pushes: []Push{web}}},
		{name: "a failed push", body: string(fixture(t, "ecr", "push_failure.json")),
			want: Parsed{ID: "2f9a1d3e-4b5c-6d7e-8f90-a1b2c3d4e5f6", Skipped: []Skip{{Tag: "v43", Reason: `the push failed: result "FAILURE"`}}}},
		{name: "a delete", body: string(fixture(t, "ecr", "delete.json")),
			want: Parsed{ID: "8c7b6a59-4d3e-2f1a-0b9c-8d7e6f5a4b3c", Skipped: []Skip{{Tag: "v41", Reason: `action-type "DELETE": only PUSH deploys`}}}},
		{name: "an untagged push", body: string(fixture(t, "ecr", "push_untagged.json")),
			want: Parsed{ID: "7a6b5c4d-3e2f-1a0b-9c8d-7e6f5a4b3c2d", Skipped: []Skip{{Reason: "untagged: nothing to deploy by tag"}}}},
		{name: "a scan", body: e("detail-type", "ECR Image Scan"),
			want: Parsed{ID: id, Skipped: []Skip{{Reason: `not an image action: detail-type "ECR Image Scan"`}}}},
		{name: "a China region", body: e("region", "cn-north-1"), want: in("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/web")},
		{name: "GovCloud", body: e("region", "us-gov-west-1"), want: in("123456789012.dkr.ecr.us-gov-west-1.amazonaws.com/team/web")},
		{name: "a signature tag", body: e("detail.image-tag", "sha256-"+dg("x")[7:]),
			want: Parsed{ID: id, Skipped: []Skip{{Tag: "sha256-" + dg("x")[7:], Reason: "signature or attestation tag"}}}},

		{name: "not from ECR", body: e("source", "aws.s3"), err: `source: want aws.ecr "aws.s3"`},
		{name: "an account of 11 digits", body: e("account", "12345678901"), err: "account: want 12 digits"},
		{name: "an account with a dot", body: e("account", "12345678901."), err: "account: want 12 digits"},
		{name: "a region with a path", body: e("region", "eu-west-1/evil"), err: "region: want a region"},
		{name: "a region without its number", body: e("region", "eu-west"), err: "region: want a region"},
		{name: "a region in upper case", body: e("region", "EU-west-1"), err: "region: want a region"},
		{name: "no region", body: e("region", remove), err: "region: want a region"},
		{name: "no repository", body: e("detail.repository-name", remove), err: "detail.repository-name: missing"},
		{name: "an invalid repository", body: e("detail.repository-name", "team//web"), err: `detail.repository-name: invalid repository`},
		{name: "an invalid tag", body: e("detail.image-tag", "v42!"), err: "detail.image-tag: invalid tag: want"},
		{name: "the documentation's short digest", body: e("detail.image-digest", "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234"),
			err: "detail.image-digest: want sha256:<64"},
		{name: "an id with a space", body: e("id", "13cde686 328b"), err: "id: want at most 128"},
		{name: "image-tag and image_tag are two fields", body: strings.Replace(string(fixture(t, "ecr", ok)), `"image-tag": "v42"`,
			`"image-tag": "v42", "image_tag": "evil"`, 1), want: Parsed{ID: id, Pushes: []Push{web}}},
		{name: "image-tag and Image-Tag", body: strings.Replace(string(fixture(t, "ecr", ok)), `"image-tag": "v42"`,
			`"image-tag": "v42", "Image-Tag": "evil"`, 1), err: `detail: duplicate key "Image-Tag"`},
		{name: "detail an array", body: e("detail", []any{}), err: "detail: want object, got array"},
	}
	runCases(t, ECR, http.Header{"Content-Type": {"application/json; charset=utf-8"}}, cases)
}
