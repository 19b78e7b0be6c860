package server

import (
	"net"
	"net/http"
	"strings"

	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// What a browser can be made to send, and how liftoff refuses it.
//
// A page open in a browser on the host (or on the private network) can
// send a POST to liftoff without any token, and with DNS rebinding (a name
// of the attacker's that resolves to 127.0.0.1) read what it answers. So:
//
//   - a state-changing request (POST, PUT, DELETE...) of /-/reload and
//     /api/ that a browser marks as cross-site (Sec-Fetch-Site other than
//     same-origin or none, or else an Origin that is not the Host) is
//     refused, 403 (crossOrigin; the status page has its own, with its
//     page as the answer). Registries send neither header: /hooks/ is
//     not checked;
//   - POST /-/reload answers only Host names of loopback (localhost,
//     127.0.0.0/8, ::1), besides loopback clients (loopbackHost);
//   - /metrics and /readyz, which need no token, answer only a Host that
//     is an IP address, localhost, or a name of one label (a compose
//     service, "liftoff"): a rebinding name is a domain of the attacker's,
//     with a dot (rebindableHost). Prometheus scraping by IP or by service
//     name works; scraping by a dotted name takes metrics_listen, which
//     does not check the Host.

// crossOrigin refuses cross-site state-changing requests from browsers;
// requests without Sec-Fetch-Site or Origin (curl, the CLI, registries)
// pass.
func crossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httperr.JSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request refused: send it from the host (curl, the liftoff CLI), not from a web page"})
	}))
	return cop.Handler(next)
}

// hostName is r's Host without its port, lower case, without the
// brackets of an IPv6 address.
func hostName(r *http.Request) string {
	h := r.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
}

// loopbackHost tells whether r names liftoff by a loopback name or
// address.
func loopbackHost(r *http.Request) bool {
	h := hostName(r)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// rebindableHost tells whether r's Host could be a name DNS rebinding
// points at liftoff: a name with a dot that is neither an IP address nor
// under localhost.
func rebindableHost(r *http.Request) bool {
	h := hostName(r)
	if net.ParseIP(h) != nil || loopbackHost(r) {
		return false
	}
	return strings.Contains(strings.TrimSuffix(h, "."), ".")
}

// noRebinding refuses, 403, a request whose Host is rebindableHost.
func noRebinding(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rebindableHost(r) {
			httperr.Text(w, http.StatusForbidden, "refused: this path answers only a Host that is an IP address, localhost "+
				"or a one-label name (DNS rebinding); scrape by IP, or serve /metrics on metrics_listen")
			return
		}
		next.ServeHTTP(w, r)
	})
}
