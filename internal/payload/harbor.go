package payload

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// mediaCloudEvents is the Content-Type of a CloudEvent in structured mode,
// as Harbor sends its CloudEvents format.
const mediaCloudEvents = "application/cloudevents+json"

// harborBody is either of Harbor's formats: the default one (type,
// occur_at, operator, event_data) or a CloudEvent (specversion, id, type,
// time, operator, data). A body with both event_data and data is refused:
// which would be read is a guess.
type harborBody struct {
	Type      string      `json:"type"` // PUSH_ARTIFACT, or harbor.artifact.pushed
	OccurAt   int64       `json:"occur_at"`
	Operator  string      `json:"operator"`
	EventData *harborData `json:"event_data"`

	SpecVersion string      `json:"specversion"`
	ID          string      `json:"id"`
	Time        string      `json:"time"`
	Data        *harborData `json:"data"`
}

type harborData struct {
	Resources  *list[harborResource] `json:"resources"`
	Repository struct {
		Name         string `json:"name"`
		Namespace    string `json:"namespace"`
		RepoFullName string `json:"repo_full_name"` // library/web: no host
	} `json:"repository"`
}

type harborResource struct {
	Digest      string `json:"digest"`
	Tag         string `json:"tag"`          // the digest again when the artifact has no tag
	ResourceURL string `json:"resource_url"` // harbor.example.com/library/web:v1, or ...@sha256:...
}

// Harbor reads a Harbor webhook in either of its payload formats: the
// default one, or CloudEvents, in structured mode (the whole event in the
// body, as Harbor sends it) or binary mode (ce-* headers, the data in the
// body). Only an artifact push deploys, each of its resources a tag; the
// host is that of the resources' resource_url.
func Harbor(h http.Header, body []byte) (Parsed, error) {
	var p Parsed
	var data *harborData
	var typ, operator, id string
	var at time.Time
	var dataPath string // where data is: "" in binary mode, the body itself
	var err error
	if h.Get("Ce-Specversion") != "" {
		// Binary mode: the event's attributes are headers.
		if data, err = read[harborData](h, body, senderJSON); err != nil {
			return Parsed{}, err
		}
		typ, operator, id = h.Get("Ce-Type"), h.Get("Ce-Operator"), h.Get("Ce-Id")
		at = rfc3339(h.Get("Ce-Time"))
	} else {
		b, err := read[harborBody](h, body, senderJSON, mediaCloudEvents)
		if err != nil {
			return Parsed{}, err
		}
		switch {
		case b.EventData != nil && (b.Data != nil || b.SpecVersion != ""):
			return Parsed{}, invalid("body", "both event_data and a CloudEvent's data")
		case b.SpecVersion != "":
			data, dataPath, id, at = b.Data, "data.", b.ID, rfc3339(b.Time)
		default:
			data, dataPath, at = b.EventData, "event_data.", unixTime(float64(b.OccurAt))
		}
		typ, operator = b.Type, b.Operator
	}
	if p.ID, err = deliveryID("id", id); err != nil {
		return Parsed{}, err
	}
	if typ != "PUSH_ARTIFACT" && typ != "harbor.artifact.pushed" {
		p.Skipped = append(p.Skipped, Skip{Reason: "event type" + shown(typ) + ": only an artifact push deploys"})
		return p, nil
	}
	if data == nil || data.Resources == nil {
		return Parsed{}, invalid(dataPath+"resources", "missing")
	}
	name := data.Repository.RepoFullName
	if name == "" && data.Repository.Name != "" && data.Repository.Namespace != "" {
		name = data.Repository.Namespace + "/" + data.Repository.Name
	}
	if name == "" {
		return Parsed{}, invalid(dataPath+"repository.repo_full_name", "missing")
	}
	c := pushes{p: &p}
	for i, res := range *data.Resources {
		path := dataPath + "resources[" + strconv.Itoa(i) + "]"
		d, ok, err := c.tagged(path+": ", path+".tag", res.Tag, path+".digest", res.Digest)
		if err != nil {
			return Parsed{}, err
		} else if !ok {
			continue
		}
		r, err := harborRepo(path+".resource_url", res, name)
		if err != nil {
			return Parsed{}, err
		}
		c.add(Push{Repo: r, Tag: res.Tag, Digest: d, Pusher: operator, PushedAt: at}, false)
	}
	return p, nil
}

// harborRepo is the repository of a resource: the host of its
// resource_url with the event's repository, which the rest of
// resource_url must name, with the resource's tag.
func harborRepo(path string, res harborResource, name string) (string, error) {
	if res.ResourceURL == "" {
		return "", invalid(path, "missing")
	}
	h, rest, ok := strings.Cut(res.ResourceURL, "/")
	if !ok || rest != name+":"+res.Tag {
		return "", invalid(path, "want <host>/<repository.repo_full_name>:<tag>")
	}
	h, err := host(path, h)
	if err != nil {
		return "", err
	}
	return repo(path, h+"/"+name)
}
