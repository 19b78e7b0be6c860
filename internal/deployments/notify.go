package deployments

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Notification is one receiver of notifications[]: where liftoff POSTs a
// message when a deploy ends (or a push awaits approval, or expires) with
// one of Events, in one of Environments.
type Notification struct {
	// Name identifies the receiver in logs and metrics; unique.
	Name string `yaml:"name"`
	// URL is where messages are POSTed: http(s), absolute. It is a secret
	// (a Slack incoming webhook's URL is its own credential): never shown
	// in an error, a log line, a metric or an answer.
	URL string `yaml:"url"`
	// Format is NotifySlack or NotifyJSON.
	Format string `yaml:"format"`
	// Events are the events that notify (NotifyEvents); left out,
	// DefaultNotifyEvents: those that want a human's attention.
	Events []string `yaml:"events"`
	// Environments limits the receiver to deployments of these
	// environments; empty, every deployment notifies (those without an
	// environment too).
	Environments []string `yaml:"environments"`
	// SecretFile holds the key of the JSON format's signature
	// (X-Liftoff-Signature, HMAC-SHA256 of the body); required with
	// NotifyJSON, refused with NotifySlack. Read at each message.
	SecretFile string `yaml:"secret_file"`

	keyPath string // SecretFile resolved against the config's directory, set by Validate
}

// Notification formats.
const (
	// NotifySlack is a Slack incoming webhook's message: {"text": "..."}.
	NotifySlack = "slack"
	// NotifyJSON is liftoff's own JSON document, signed.
	NotifyJSON = "json"
)

// Notification events: the four deploy outcomes a human may want to hear
// of, a push that awaits approval, and one whose approval timed out.
const (
	EventSucceeded  = "succeeded"
	EventFailed     = "failed"
	EventRolledBack = "rolled_back"
	EventRefused    = "refused"
	EventPending    = "pending"
	EventExpired    = "expired"
	// A canary release (proxy.canary) started, or ended promoted or
	// aborted: opt-in (an aborted canary's deploy ends rolled_back too).
	EventCanaryStarted  = "canary_started"
	EventCanaryPromoted = "canary_promoted"
	EventCanaryAborted  = "canary_aborted"
)

// NotifyEvents returns every event a receiver may ask for.
func NotifyEvents() []string {
	return []string{EventSucceeded, EventFailed, EventRolledBack, EventRefused, EventPending, EventExpired,
		EventCanaryStarted, EventCanaryPromoted, EventCanaryAborted}
}

// DefaultNotifyEvents returns the events of a receiver that does not list
// any: what needs someone's attention, not every success.
func DefaultNotifyEvents() []string {
	return []string{EventFailed, EventRolledBack, EventRefused, EventPending, EventExpired}
}

// minNotifyKeyLen is the shortest signing key accepted.
const minNotifyKeyLen = 16

// Wants tells whether the receiver is to be told of event in a deployment
// of environment ("" for a deployment without one).
func (n *Notification) Wants(event, environment string) bool {
	if !slices.Contains(n.Events, event) {
		return false
	}
	return len(n.Environments) == 0 || (environment != "" && slices.Contains(n.Environments, environment))
}

// Key reads the signing key from SecretFile (its content without the
// trailing newline). The error names the file, never its content.
func (n *Notification) Key() ([]byte, error) {
	if n.SecretFile == "" {
		return nil, fmt.Errorf("receiver %s has no secret_file", n.Name)
	}
	path := n.keyPath
	if path == "" {
		path = n.SecretFile
	}
	k, err := readSecretFile(path)
	if err != nil {
		return nil, err
	}
	return []byte(k), nil
}

// PublicHTTPS tells whether the status page is reached over HTTPS from
// outside (public_url is https://): its session cookie is then Secure even
// when a proxy in front terminates TLS.
func (c *Config) PublicHTTPS() bool { return strings.HasPrefix(c.PublicURL, "https://") }

// DeploymentURL returns the status page's address of a deployment under
// public_url, or "" without public_url.
func (c *Config) DeploymentURL(deployment string) string {
	if c.PublicURL == "" {
		return ""
	}
	return c.PublicURL + "/deployments/" + url.PathEscape(deployment)
}

// checkPublicURL checks public_url: an absolute http(s) URL of a host's
// root (no path, query or fragment), kept without its trailing slash.
func (c *Config) checkPublicURL(p *problems) {
	if c.PublicURL == "" {
		return
	}
	const at = "public_url"
	u, err := url.Parse(c.PublicURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		p.addf(at, "want the status page's address as seen from outside, e.g. https://liftoff.example.com (got %s)", p.quote(at, c.PublicURL))
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		p.addf(at, "want scheme://host[:port], without user, query or fragment")
	case u.Path != "" && u.Path != "/":
		// Its pages link to /static/..., /login: under a prefix they break.
		p.addf(at, "the status page is served at the root of its host: give scheme://host[:port] without a path (a proxy that maps a path to liftoff would break the page's links)")
	default:
		c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	}
}

// validateNotifications checks each receiver and fills in the default
// events. Environments must be validated before (receivers name them). A
// receiver's url is never shown in an error, nor the content of its
// secret_file.
func (c *Config) validateNotifications(p *problems) {
	names := map[string]int{}
	for i := range c.Notifications {
		n := &c.Notifications[i]
		np := fmt.Sprintf("notifications[%d]", i)

		switch at := np + ".name"; {
		case n.Name == "":
			p.addf(at, "missing: it names the receiver in logs and in liftoff_notifications_total")
		case !validName(n.Name, 1):
			p.addf(at, "invalid name %s: want [a-zA-Z0-9][a-zA-Z0-9_.-]*", p.quote(at, n.Name))
		default:
			if j, dup := names[n.Name]; dup {
				p.addf(at, "duplicate of notifications[%d]", j)
			} else {
				names[n.Name] = i
			}
		}

		checkNotifyURL(p, np+".url", n.URL)

		switch at := np + ".format"; n.Format {
		case NotifySlack, NotifyJSON:
		case "":
			p.addf(at, "missing: want slack (a Slack incoming webhook) or json (liftoff's signed JSON document)")
		default:
			p.addf(at, "unknown format %s: want slack or json", p.quote(at, n.Format))
		}

		switch at := np + ".events"; {
		case n.Events == nil:
			n.Events = DefaultNotifyEvents()
		case len(n.Events) == 0:
			p.addf(at, "empty: list events (%s), or leave events out for %s",
				strings.Join(NotifyEvents(), ", "), strings.Join(DefaultNotifyEvents(), ", "))
		}
		seen := map[string]bool{}
		for j, e := range n.Events {
			at := fmt.Sprintf("%s.events[%d]", np, j)
			switch {
			case !slices.Contains(NotifyEvents(), e):
				p.addf(at, "unknown event %s: want one of %s", p.quote(at, e), strings.Join(NotifyEvents(), ", "))
			case seen[e]:
				p.addf(at, "%s is listed twice", e)
			}
			seen[e] = true
		}
		envs := map[string]bool{}
		for j, e := range n.Environments {
			at := fmt.Sprintf("%s.environments[%d]", np, j)
			if envs[e] {
				p.addf(at, "%s is listed twice", p.quote(at, e))
			}
			envs[e] = true
			c.checkEnvironmentRef(p, at, e)
		}

		at := np + ".secret_file"
		switch {
		case n.Format == NotifySlack && n.SecretFile != "":
			p.addf(at, "has no effect with format slack (Slack messages are not signed): remove it")
		case n.Format == NotifyJSON && n.SecretFile == "":
			p.addf(at, "missing: a json receiver's messages are signed (X-Liftoff-Signature) with the key in this file, e.g. from `openssl rand -hex 32`")
		case n.SecretFile != "":
			n.keyPath = c.resolve(n.SecretFile)
			switch k, err := readSecretFile(n.keyPath); {
			case err != nil:
				p.addFile(at, err)
			case len(k) < minNotifyKeyLen:
				p.addf(at, "the key it holds is too short: at least %d characters, e.g. from `openssl rand -hex 32`", minNotifyKeyLen)
			}
		}
	}
}

// checkNotifyURL checks a receiver's url without ever showing it, nor
// what url.Parse says of it (that would quote it).
func checkNotifyURL(p *problems, at, raw string) {
	if raw == "" {
		p.addf(at, "missing: the receiver's http(s) URL, usually ${VAR} (it is a secret)")
		return
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		p.addf(at, "not a valid URL (the value is a secret and is not shown)")
	case u.Scheme != "http" && u.Scheme != "https":
		p.addf(at, "want an absolute http:// or https:// URL (the value is a secret and is not shown)")
	case u.Host == "":
		p.addf(at, "has no host (the value is a secret and is not shown)")
	case u.Fragment != "":
		p.addf(at, "has a #fragment, which is never sent (the value is a secret and is not shown)")
	}
}
