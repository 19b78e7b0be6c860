package payload

import (
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

type quayBody struct {
	Repository  string    `json:"repository"` // ns/name
	DockerURL   string    `json:"docker_url"` // quay.io/ns/name, or a self-hosted Quay's host
	UpdatedTags *quayTags `json:"updated_tags"`
}

// quayTags is updated_tags: a list of tags, or, in very old deliveries, a
// map of tag to image id. Either is read in the order sent, at most
// maxList tags.
type quayTags []string

func (q *quayTags) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch dec.PeekKind() {
	case '[':
		var l list[string]
		err := json.UnmarshalDecode(dec, &l)
		*q = quayTags(l)
		return err
	case '{':
	default:
		return &json.SemanticError{JSONKind: dec.PeekKind(), GoType: reflect.TypeFor[list[string]]()}
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		if len(*q) == maxList {
			return &json.SemanticError{JSONKind: '[', GoType: reflect.TypeFor[list[string]](), Err: errTooMany}
		}
		name, err := dec.ReadToken() // a repeated tag is refused by the decoder
		if err != nil {
			return err
		}
		// String before the next read: the token is only valid until then.
		*q = append(*q, name.String())
		if err := dec.SkipValue(); err != nil { // the image id
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// Quay reads a Quay repo_push notification: each of updated_tags is a
// push. Quay sends no digest and no pusher. The repository is docker_url,
// which holds the host, and must end with repository.
func Quay(h http.Header, body []byte) (Parsed, error) {
	b, err := read[quayBody](h, body, senderJSON)
	if err != nil {
		return Parsed{}, err
	}
	if b.UpdatedTags == nil {
		return Parsed{}, invalid("updated_tags", "missing")
	}
	h0, rest, ok := strings.Cut(b.DockerURL, "/")
	switch {
	case b.DockerURL == "":
		return Parsed{}, invalid("docker_url", "missing")
	case !ok:
		return Parsed{}, invalid("docker_url", "want <host>/<namespace>/<name>")
	case b.Repository != "" && rest != b.Repository:
		return Parsed{}, invalid("docker_url", "does not end with repository")
	}
	hst, err := host("docker_url", h0)
	if err != nil {
		return Parsed{}, err
	}
	r, err := repo("docker_url", hst+"/"+rest)
	if err != nil {
		return Parsed{}, err
	}
	var p Parsed
	c := pushes{p: &p}
	for i, t := range *b.UpdatedTags {
		path := "updated_tags[" + strconv.Itoa(i) + "]"
		if _, ok, err := c.tagged(path+": ", path, t, "", ""); err != nil {
			return Parsed{}, err
		} else if ok {
			c.add(Push{Repo: r, Tag: t}, false)
		}
	}
	if len(*b.UpdatedTags) == 0 {
		c.skip("", "no updated tags")
	}
	return p, nil
}
