package payload

import (
	"net/http"
	"testing"
)

// benchParser measures parse on a fixture that deploys.
func benchParser(b *testing.B, parse parser, h http.Header, body []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		p, err := parse(h, body)
		if err != nil || len(p.Pushes) == 0 {
			b.Fatalf("%+v, %v", p, err)
		}
	}
}

// BenchmarkParseDockerHub is the hot path's parser, its cache warm.
func BenchmarkParseDockerHub(b *testing.B) {
	benchParser(b, NewDockerHubParser().Parse, nil, fixture(b, "dockerhub", "push.json"))
}

func BenchmarkParseGHCR(b *testing.B) {
	benchParser(b, GHCR, ghHeader("package"), fixture(b, "ghcr", "package_published.json"))
}

// BenchmarkParseDistribution reads a batch of 20 events, one of which
// deploys.
func BenchmarkParseDistribution(b *testing.B) {
	benchParser(b, Distribution, http.Header{"Content-Type": {mediaEventsV1}}, fixture(b, "distribution", "batch_v1.json"))
}

func BenchmarkParseHarbor(b *testing.B) {
	benchParser(b, Harbor, http.Header{"Content-Type": {"application/json"}}, fixture(b, "harbor", "default_push.json"))
}

func BenchmarkParseQuay(b *testing.B) {
	benchParser(b, Quay, http.Header{"Content-Type": {"application/json"}}, fixture(b, "quay", "repo_push_list.json"))
}

func BenchmarkParseECR(b *testing.B) {
	benchParser(b, ECR, http.Header{"Content-Type": {"application/json"}}, fixture(b, "ecr", "push_success.json"))
}

func BenchmarkParseGeneric(b *testing.B) {
	benchParser(b, Generic, http.Header{"Content-Type": {"application/json"}}, fixture(b, "generic", "with_digest.json"))
}

func BenchmarkVerifySignature(b *testing.B) {
	body := fixture(b, "ghcr", "package_published.json")
	header := sign("s3cret", string(body))
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := VerifySignature([]byte("s3cret"), header, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseGAR(b *testing.B) {
	benchParser(b, GAR, http.Header{"Content-Type": {"application/json"}}, fixture(b, "gar", "insert_tagged.json"))
}
