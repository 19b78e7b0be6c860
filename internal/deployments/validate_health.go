package deployments

import (
	"net/url"
	"strings"
	"time"
)

// checkHealth checks what the engine will hand to Docker and probe, once
// the gate's defaults are filled in, and puts "CMD" in front of a plain
// command.
func checkHealth(p *problems, at string, h *Health) {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"timeout", h.Timeout}, {"min_uptime", h.MinUptime}, {"interval", h.Interval}} {
		if d.v < 0 {
			p.addf(at+"."+d.key, "must be positive")
		}
	}
	if h.MinUptime > h.Timeout {
		p.addf(at+".min_uptime", "longer than timeout (%s): the gate could never pass", h.Timeout)
	}
	if h.Retries < 0 {
		p.addf(at+".retries", "must be positive")
	}
	if len(h.Cmd) > 0 {
		switch h.Cmd[0] {
		case "CMD", "CMD-SHELL":
			if len(h.Cmd) < 2 || h.Cmd[1] == "" {
				p.addf(at+".cmd", "%s needs a command after it", h.Cmd[0])
			}
		case "NONE":
		case "":
			p.addf(at+".cmd", "empty command")
		default:
			h.Cmd = append([]string{"CMD"}, h.Cmd...)
		}
	}
	if h.URL != "" {
		// {container} is replaced by the container's address at probe time.
		// {upstream}, for a proxied deployment, by the address liftoff's
		// proxy reaches it at.
		u, err := url.Parse(strings.NewReplacer("{container}", "container", "{upstream}", "upstream").Replace(h.URL))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.addf(at+".url", "%s: want an http(s) URL, e.g. http://127.0.0.1:8001/healthz or http://{container}:8000/healthz", p.quote(at+".url", h.URL))
		}
	}
}
