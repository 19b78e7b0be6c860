package payload

import "net/http"

// genericBody is liftoff's own webhook format, for a CI job or a registry
// liftoff has no parser for.
type genericBody struct {
	Image  string `json:"image"`  // acme/web, ghcr.io/acme/web, registry.example.com:5000/web
	Tag    string `json:"tag"`    // required
	Digest string `json:"digest"` // optional: sha256:<64 hex>
}

// Generic reads liftoff's own format, {"image": "...", "tag": "...",
// "digest": "..."}, in which a key liftoff does not know is an error (the
// caller checks X-Liftoff-Signature-256 first, with VerifySignature).
func Generic(h http.Header, body []byte) (Parsed, error) {
	b, err := read[genericBody](h, body, ownJSON)
	if err != nil {
		return Parsed{}, err
	}
	r, err := repo("image", b.Image)
	if err != nil {
		return Parsed{}, err
	}
	if b.Tag == "" {
		return Parsed{}, invalid("tag", "missing")
	}
	var p Parsed
	c := pushes{p: &p}
	d, ok, err := c.tagged("", "tag", b.Tag, "digest", b.Digest)
	if err != nil {
		return Parsed{}, err
	} else if !ok {
		return p, nil
	}
	c.add(Push{Repo: r, Tag: b.Tag, Digest: d}, false)
	return p, nil
}
