package payload

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

// fuzzParser fuzzes parse with the fixtures of source and seeds, under
// each of headers: no panic, an error wraps ErrInvalid and is printable,
// and whatever deploys or is deleted has a valid tag and a normalized
// repository.
func fuzzParser(f *testing.F, source string, parse parser, headers []http.Header, seeds ...string) {
	paths, _ := filepath.Glob(filepath.Join("testdata", source, "*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, h := range headers {
			p, err := parse(h, body)
			if err != nil {
				msg := err.Error()
				if !errors.Is(err, ErrInvalid) || len(msg) > 600 || strings.ContainsFunc(msg, func(r rune) bool { return !unicode.IsPrint(r) }) {
					t.Fatalf("error %q", msg)
				}
				continue
			}
			checkParsed(t, p)
		}
	})
}

func FuzzDockerHub(f *testing.F) {
	// A push outside Docker Hub comes back as an error that is not
	// ErrInvalid, which fuzzParser reports.
	onHub := func(h http.Header, body []byte) (Parsed, error) {
		p, err := NewDockerHubParser().Parse(h, body)
		for _, ps := range p.Pushes {
			if !strings.HasPrefix(ps.Repo, "docker.io/") {
				return p, fmt.Errorf("repo %q is not on Docker Hub", ps.Repo)
			}
		}
		return p, err
	}
	fuzzParser(f, "dockerhub", onHub, []http.Header{nil},
		`{"push_data": {"tag": "v1.0", "pushed_at": 1.417566161e+09}, "repository": {"namespace": "library", "name": "x"}}`,
		`{"push_data": {"tag": ".."}, "repository": {"repo_name": "../x"}}`,
		`{"push_data": null, "repository": {"repo_name": "x"}} {}`,
		`[]`)
}

func FuzzGHCR(f *testing.F) {
	fuzzParser(f, "ghcr", GHCR, []http.Header{ghHeader("package"), ghHeader("registry_package"), ghHeader("ping")},
		`{"action": "published", "package": {"name": "Web", "namespace": "a", "package_type": "container",`+
			`"package_version": {"package_url": "localhost:5000/a/web:v1", "container_metadata": {"tag": {"name": "v1", "digest": ""}}}}}`,
		`{"action": "updated", "registry_package": {"name": "a/b", "namespace": "X", "package_type": "CONTAINER",`+
			`"package_version": {"container_metadata": {"tag": {"name": "sha256:1"}}}}}`)
}

func FuzzDistribution(f *testing.F) {
	fuzzParser(f, "distribution", Distribution, []http.Header{{"Content-Type": {mediaEventsV2}}},
		`{"events": [{"action": "push", "target": {"mediaType": "application/vnd.oci.image.index.v1+json", "repository": "a/b",`+
			`"tag": "v1", "url": "http://[::1]:5000/v2/a/b/manifests/x"}}]}`,
		`{"events": [{"action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "a",`+
			`"tag": "v1"}, "request": {"host": "LOCALHOST"}}, {"action": "push"}]}`,
		`{"events": [{"action": "delete", "target": {"repository": "a/b", "tag": "pr-1"}, "request": {"host": "localhost:5000"}}]}`)
}

func FuzzHarbor(f *testing.F) {
	binary := http.Header{"Ce-Specversion": {"1.0"}, "Ce-Type": {"harbor.artifact.pushed"}, "Ce-Id": {"1"}}
	fuzzParser(f, "harbor", Harbor, []http.Header{{"Content-Type": {"application/json"}}, binary},
		`{"type": "PUSH_ARTIFACT", "event_data": {"resources": [{"tag": "v1", "resource_url": "h.io/a/b:v1"}], "repository": {"namespace": "a", "name": "b"}}}`,
		`{"specversion": "1.0", "type": "harbor.artifact.pushed", "data": {"resources": [{"tag": "v1", "resource_url": "h.io/a:v1"}], "repository": {"repo_full_name": "a"}}}`)
}

func FuzzQuay(f *testing.F) {
	fuzzParser(f, "quay", Quay, []http.Header{{"Content-Type": {"application/json"}}},
		`{"docker_url": "quay.io/a/b", "updated_tags": {"v1": null, "v2": [], "sha256:x": 1}}`,
		`{"docker_url": "localhost/b", "repository": "b", "updated_tags": ["v1", "v1.att", ""]}`)
}

func FuzzECR(f *testing.F) {
	fuzzParser(f, "ecr", ECR, []http.Header{{"Content-Type": {"application/json"}}},
		`{"source": "aws.ecr", "detail-type": "ECR Image Action", "account": "000000000000", "region": "cn-north-1",`+
			`"detail": {"action-type": "PUSH", "result": "SUCCESS", "repository-name": "a", "image-tag": "v1"}}`)
}

func FuzzGeneric(f *testing.F) {
	fuzzParser(f, "generic", Generic, []http.Header{{"Content-Type": {"application/json"}}},
		`{"image": "index.docker.io/a/b", "tag": "v1"}`, `{"image": "registry-1.docker.io/library/x", "tag": "x.sig", "digest": null}`)
}

func FuzzGAR(f *testing.F) {
	fuzzParser(f, "gar", GAR, []http.Header{{"Content-Type": {"application/json"}}},
		`{"message": {"data": "e30=", "messageId": "1"}}`, `{"message": null}`, `{"message": {"data": "=="}}`)
}

// FuzzGAREvent fuzzes the event inside message.data, which the bytes of
// a whole push would only rarely reach through its base64.
func FuzzGAREvent(f *testing.F) {
	wrapped := func(h http.Header, event []byte) (Parsed, error) {
		body := `{"message": {"data": "` + base64.StdEncoding.EncodeToString(event) + `", "messageId": "1", "publishTime": "2026-12-07T03:12:34Z"}}`
		return GAR(h, []byte(body))
	}
	fuzzParser(f, "", wrapped, []http.Header{{"Content-Type": {"application/json"}}},
		`{"action": "INSERT", "digest": "us-docker.pkg.dev/p/r/i@sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b", "tag": "us-docker.pkg.dev/p/r/i:v1"}`,
		`{"action": "INSERT", "tag": "localhost:5000/i:v1.sig"}`, `{"action": "DELETE", "tag": "gcr.io/p/i:v1"}`,
		`{"action": "INSERT", "tag": "gcr.io:443/p/i:latest", "digest": "gcr.io:443/p/i@sha256:x"}`, `{"action": "INSERT", "tag": ":"}`)
}
