package payload

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Media types of a CNCF distribution registry's notifications: v2
// registries send events.v1 and batch several events in one envelope;
// v3 sends events.v2, one event an envelope.
const (
	mediaEventsV1 = "application/vnd.docker.distribution.events.v1+json"
	mediaEventsV2 = "application/vnd.docker.distribution.events.v2+json"
)

type distEnvelope struct {
	Events *list[distEvent] `json:"events"`
}

type distEvent struct {
	ID        string `json:"id"`
	Timestamp string `json:"timestamp"`
	Action    string `json:"action"` // push, pull, delete, mount
	Target    struct {
		MediaType  string `json:"mediaType"`
		Digest     string `json:"digest"`
		Repository string `json:"repository"`
		URL        string `json:"url"`
		Tag        string `json:"tag"`
	} `json:"target"`
	Request struct {
		Host string `json:"host"` // the Host the pusher used: the registry's name
	} `json:"request"`
	Actor struct {
		Name string `json:"name"`
	} `json:"actor"`
}

// Distribution reads a CNCF distribution registry's notification
// (registry:2 and 3, and the registries built on it): an envelope of
// events, of which only the push of a tagged manifest or index deploys,
// and a tag's delete is Deleted.
// One push makes an event per blob and per manifest, and a multi-arch
// push's platform manifests come untagged: all of these are skipped.
//
// The registry retries a delivery it is not answered 2xx or 3xx, forever:
// only the events that would deploy are checked, so that a pull with a
// field liftoff does not know cannot wedge the registry's queue, and a
// push liftoff cannot take is skipped with why rather than refused. Only
// a body that is no envelope is refused.
func Distribution(h http.Header, body []byte) (Parsed, error) {
	env, err := read[distEnvelope](h, body, senderJSON, mediaEventsV1, mediaEventsV2)
	if err != nil {
		return Parsed{}, err
	}
	if env.Events == nil {
		return Parsed{}, invalid("events", "missing")
	}
	var p Parsed
	events := *env.Events
	if len(events) == 1 {
		// One event an envelope (v3): its id comes again on a retry. One
		// liftoff would not store is dropped, not refused: a 400 would
		// be retried forever.
		p.ID, _ = deliveryID("events[0].id", events[0].ID)
	}
	c := pushes{p: &p}
	for i := range events {
		if err := distEventPush(&c, "events["+strconv.Itoa(i)+"]", &events[i]); err != nil {
			// A push liftoff cannot take (a repository path too long
			// once the host is in front, a host that is no host) is
			// skipped with why, not refused: the registry retries a
			// refused delivery forever, in order, and one such event
			// would hold up every notification after it.
			c.skip(events[i].Target.Tag, strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
	}
	return p, nil
}

// distEventPush adds what one event deploys, or why it deploys nothing,
// to c.
func distEventPush(c *pushes, path string, ev *distEvent) error {
	t := &ev.Target
	switch {
	case ev.Action == "delete" && t.Tag != "":
		return distEventDelete(c, path, ev)
	case ev.Action != "push":
		c.skip(t.Tag, path+": action"+shown(ev.Action))
		return nil
	case !isManifest(t.MediaType):
		c.skip(t.Tag, path+": not a manifest (a blob or an artifact):"+shown(t.MediaType))
		return nil
	}
	d, ok, err := c.tagged(path+": ", path+".target.tag", t.Tag, path+".target.digest", t.Digest)
	if !ok {
		return err
	}
	host, err := distHost(path, ev)
	if err != nil {
		return err
	}
	if t.Repository == "" {
		return invalid(path+".target.repository", "missing")
	}
	r, err := repo(path+".target.repository", host+"/"+t.Repository)
	if err != nil {
		return err
	}
	c.add(Push{Repo: r, Tag: t.Tag, Digest: d, Pusher: ev.Actor.Name, PushedAt: rfc3339(ev.Timestamp)},
		isIndex(t.MediaType))
	return nil
}

// distEventDelete records a tag's delete (the registry sends
// target.repository and target.tag, no media type), or why it is
// skipped.
func distEventDelete(c *pushes, path string, ev *distEvent) error {
	t := &ev.Target
	skip, err := tag(path+".target.tag", t.Tag)
	if err != nil {
		return err
	}
	if skip != "" {
		c.skip(t.Tag, path+": delete: "+skip)
		return nil
	}
	host, err := distHost(path, ev)
	if err != nil {
		return err
	}
	if t.Repository == "" {
		return invalid(path+".target.repository", "missing")
	}
	r, err := repo(path+".target.repository", host+"/"+t.Repository)
	if err != nil {
		return err
	}
	c.deleted(Push{Repo: r, Tag: t.Tag, Pusher: ev.Actor.Name, PushedAt: rfc3339(ev.Timestamp)})
	return nil
}

// distHost is the registry's host: request.host, else the host of
// target.url. The registry writes request.host from the Host header of the
// push, so it is the name the pusher used (registry.example.com:5000).
func distHost(path string, ev *distEvent) (string, error) {
	if h := ev.Request.Host; h != "" {
		return host(path+".request.host", h)
	}
	if ev.Target.URL == "" {
		return "", invalid(path+".request.host", "missing, and no target.url")
	}
	u, err := url.Parse(ev.Target.URL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", invalid(path+".target.url", "want http(s)://<registry host>/v2/...")
	}
	return host(path+".target.url", u.Host)
}
