package webhooks

import (
	"net/http"

	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/payload"
)

// push is what a source's payload says was pushed, checked: Repo is
// normalized (docker.io/acme/web) and Tag follows the tag grammar.
type push = payload.Push

// source is how one webhook source is read: its parser, and how its
// sender proves itself beyond the token in the URL.
type source struct {
	// parse reads the payload; its errors wrap payload.ErrInvalid, a 400.
	parse func(h http.Header, body []byte) (payload.Parsed, error)
	// signature names the header that carries "sha256=<HMAC of the body>"
	// under the hook's secret; "" for a source that does not sign.
	signature string
}

// Signature headers of the sources that sign.
const (
	headerGitHubSignature  = "X-Hub-Signature-256"
	headerLiftoffSignature = "X-Liftoff-Signature-256"
)

// newSources returns the parser of each of deployments.HookSources, and of
// no other (TestSourcesMatchConfig). Docker Hub's is the hot path: its
// parser, made once per Handler, remembers the repositories it has seen.
func newSources() map[string]source {
	return map[string]source{
		deployments.SourceDockerHub:    {parse: payload.NewDockerHubParser().Parse},
		deployments.SourceGHCR:         {parse: payload.GHCR, signature: headerGitHubSignature},
		deployments.SourceDistribution: {parse: payload.Distribution},
		deployments.SourceHarbor:       {parse: payload.Harbor},
		deployments.SourceQuay:         {parse: payload.Quay},
		deployments.SourceECR:          {parse: payload.ECR},
		deployments.SourceGAR:          {parse: payload.GAR},
		deployments.SourceGeneric:      {parse: payload.Generic, signature: headerLiftoffSignature},
	}
}
