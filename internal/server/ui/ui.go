// Package ui is liftoff's status page: server-rendered HTML for people,
// over the API's tokens and scopes, reading and acting through the same
// control.Service as the management API. What a page shows is what the
// API shows (apiv1), and each button is the API's action after the same
// scope check. Templates and static files are embedded from templates/
// and static/.
package ui

import (
	"context"
	"crypto/sha256"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"
	"github.com/rs/zerolog"

	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/accesslog"
	"github.com/liftoff-deploy/liftoff/internal/server/bearer"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

//go:embed templates/*.html static/*
var files embed.FS

// Catalogue is what the page needs of the configuration in force;
// *deployments.Config implements it.
type Catalogue interface {
	// APIAuth tells, in constant time, who an API token acts as.
	APIAuth(token string) (deployments.Principal, bool)
	// APIAuthSum is APIAuth for the SHA-256 sum of a token: what a
	// session keeps.
	APIAuthSum(sum [sha256.Size]byte) (deployments.Principal, bool)
	// APIEnabled tells whether any API token is configured: without one
	// the page does not exist (404), as the API does not.
	APIEnabled() bool
	// PublicHTTPS: the page is reached over HTTPS (public_url), maybe
	// through a proxy that terminates TLS.
	PublicHTTPS() bool
	All() []*deployments.Deployment
}

var _ Catalogue = (*deployments.Config)(nil)

// Handler serves the status page. It is safe for concurrent use.
type Handler struct {
	svc       *control.Service
	catalogue func() Catalogue
	log       zerolog.Logger
	now       func() time.Time
	sessions  *sessions
}

// New returns a Handler that reads and acts through svc (and tells time by
// its clock) on the configuration catalogue returns (nil while none is
// loaded).
func New(svc *control.Service, catalogue func() Catalogue, log zerolog.Logger) *Handler {
	return &Handler{svc: svc, catalogue: catalogue, log: log, now: svc.Now, sessions: newSessions()}
}

type principalKey struct{}

func principal(r *http.Request) deployments.Principal {
	p, _ := r.Context().Value(principalKey{}).(deployments.Principal)
	return p
}

// target finds the route's deployment and checks the caller's scope on it.
func (h *Handler) target(r *http.Request, verb deployments.Verb) (*deployments.Deployment, error) {
	return h.svc.Target(principal(r), chi.URLParam(r, "name"), verb)
}

// What the pages show.
const (
	historyShown    = 50 // deploys on a deployment's page
	deliveriesShown = 20 // deliveries on the overview
	failuresShown   = 10 // failed deploys on the overview
	refreshSeconds  = 3  // how often ui.js refreshes a page
	// loginRate is how many login attempts a minute one client IP may
	// make.
	loginRate = 10
	// maxFormBody bounds a form's body: a token, a form token, a field.
	maxFormBody = 4 << 10
)

// Routes mounts the status page on r, beside the API (and only where the
// API is): the login form and the static files are open; every other page
// needs a session or an API token (auth). Every POST must come from one
// of liftoff's own pages (CrossOriginProtection), and, with a session,
// carry its form token.
func (h *Handler) Routes(r chi.Router) {
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, http.StatusForbidden, "This form was sent from another site. Use liftoff's own page.")
	}))
	limitLogin := httprate.LimitBy(loginRate, time.Minute, accesslog.ClientIP,
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			h.loginPage(w, r, http.StatusTooManyRequests, "Too many attempts from your address: wait a minute and try again.")
		}))
	r.Group(func(r chi.Router) {
		r.Use(h.enabled, headers, cop.Handler)
		r.Handle("/static/*", staticFiles(static))
		r.Get("/login", func(w http.ResponseWriter, r *http.Request) { h.loginPage(w, r, http.StatusOK, "") })
		r.With(limitLogin).Post("/login", h.login)
		r.Group(func(r chi.Router) {
			r.Use(h.auth)
			r.Get("/", h.overviewPage)
			r.Get("/deployments/{name}", h.deploymentPage)
			r.Post("/deployments/{name}/{action}", h.action)
			r.Post("/deployments/{name}/canary/{action}", h.canaryAction)
			r.Post("/logout", h.logout)
		})
	})
}

// staticFiles serves the page's style sheet and script, and no listing of
// them.
func staticFiles(files fs.FS) http.Handler {
	h := http.StripPrefix("/static/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			httperr.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// enabled: the page exists when the API does, with API tokens in the
// config; otherwise its paths are unknown paths (404), as the API's are.
func (h *Handler) enabled(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cat := h.catalogue(); cat == nil || !cat.APIEnabled() {
			httperr.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// headers: no script, style or frame but liftoff's own, and nothing
// cached.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// sessionKey keys the request's reqSession in its context.
type sessionKey struct{}

// reqSession is the session a request came with; there is none for a
// request with Authorization: Bearer.
type reqSession struct {
	id   string
	csrf string
}

func sessionOf(r *http.Request) *reqSession {
	s, _ := r.Context().Value(sessionKey{}).(*reqSession)
	return s
}

// auth lets through a request with an API token (Authorization: Bearer,
// as the API) or with a session that a token opened, and puts who it is in
// the request's context, as the API's auth does. A session's token is looked up
// in the config in force at each request. Without either, a page redirects
// to the login form.
func (h *Handler) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cat := h.catalogue()
		// Another scheme (Basic, from a proxy that guards the page) is
		// not liftoff's: the session decides.
		if token, ok := bearer.Token(r); ok {
			p, known := cat.APIAuth(token)
			if !known {
				w.Header().Set("WWW-Authenticate", `Bearer realm="liftoff"`)
				h.loginPage(w, r, http.StatusUnauthorized, "That is not an API token of liftoff's config.")
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
			return
		}
		if c, err := r.Cookie(sessionCookie); err == nil {
			if sess, ok := h.sessions.get(c.Value, h.now()); ok {
				if p, ok := cat.APIAuthSum(sess.sum); ok {
					ctx := context.WithValue(r.Context(), principalKey{}, p)
					ctx = context.WithValue(ctx, sessionKey{}, &reqSession{id: c.Value, csrf: sess.csrf})
					next.ServeHTTP(w, r.WithContext(ctx))
					return
				}
				h.sessions.remove(c.Value) // its token is no longer in the config
			}
			h.clearSessionCookie(w, r)
		}
		if r.Method == http.MethodGet {
			// Back to the page asked for once logged in (a link from
			// a notification, say).
			to := "/login"
			if next := r.URL.RequestURI(); localPath(next) && next != "/" {
				to += "?next=" + url.QueryEscape(next)
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
			return
		}
		h.loginPage(w, r, http.StatusUnauthorized, "Your session has ended: log in again.")
	})
}

// login opens a session for a valid API token that may read.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		h.loginPage(w, r, http.StatusBadRequest, "The form could not be read: send the token alone.")
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	p, ok := h.catalogue().APIAuth(token)
	if !ok {
		// Nothing of what was typed is logged: it may be a token of
		// something else.
		h.log.Info().Str("remote", r.RemoteAddr).Msg("ui: login refused: not an API token")
		h.loginPage(w, r, http.StatusUnauthorized, "That is not an API token of liftoff's config. Check it and try again.")
		return
	}
	if err := mayPage(p); err != nil {
		h.loginPage(w, r, http.StatusForbidden, fmt.Sprintf("The token %s lacks scope %s, which the status page needs.",
			p.Name, deployments.Scope(deployments.VerbRead, "")))
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		h.sessions.remove(c.Value) // a new login replaces the session it came with
	}
	id := h.sessions.create(sha256.Sum256([]byte(token)), h.now())
	h.setSessionCookie(w, r, id)
	h.log.Info().Str("actor", p.Name).Str("remote", r.RemoteAddr).Msg("ui: logged in")
	to := "/"
	if next := r.PostForm.Get("next"); localPath(next) {
		to = next
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// localPath tells whether p is a path of this site to send a browser back
// to: it starts with one "/" (not "//" or "/\", which browsers take for
// another host) and holds no control character.
func localPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return false
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// logout ends the session.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	if sess := sessionOf(r); sess != nil {
		h.sessions.remove(sess.id)
		h.clearSessionCookie(w, r)
		h.log.Info().Str("actor", principal(r).Name).Msg("ui: logged out")
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// checkForm reads a POST's form and, for a session, checks its form token:
// a page of another site cannot know it. A request with a Bearer token
// needs none (a browser never adds that header by itself). It answers the
// request and returns false if the form is refused.
func (h *Handler) checkForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	if sess := sessionOf(r); sess != nil && !sameToken(r.PostForm.Get("csrf"), sess.csrf) {
		h.errorPage(w, r, http.StatusForbidden, "This form is stale or was not sent from liftoff's page: reload the page and try again.")
		return false
	}
	return true
}

// mayPage checks that p may see the pages: as every GET of the API, it
// takes read.
func mayPage(p deployments.Principal) error { return control.May(p, deployments.VerbRead, "") }

// action is a button: approve, reject, pause or resume. It takes the
// scope the API's route takes and calls what the API's handler calls,
// then goes back to the page it came from with what happened.
func (h *Handler) action(w http.ResponseWriter, r *http.Request) {
	if !h.checkForm(w, r) {
		return
	}
	a, ok := control.ParseAction(chi.URLParam(r, "action"))
	if !ok || a == control.Deploy || a == control.Rollback {
		h.errorPage(w, r, http.StatusNotFound, "There is no such button.")
		return
	}
	d, err := h.target(r, a.Verb())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	// An approval or a rejection names the push the page showed: its
	// request id (required) and digest.
	var want deploy.Decision
	if a == control.Approve || a == control.Reject {
		id, err := strconv.ParseInt(r.PostForm.Get("request"), 10, 64)
		if err != nil || id <= 0 {
			h.errorPage(w, r, http.StatusBadRequest, "This form does not say which push to decide: reload the page and try again.")
			return
		}
		want = deploy.Decision{Request: id, Digest: r.PostForm.Get("digest")}
	}
	text, err := h.act(r.Context(), d, principal(r).Name, a, want)
	f := flash{Text: text}
	if err != nil {
		f = flash{Text: h.errorText(r, err), Error: true}
	}
	back := "/"
	if r.PostForm.Get("from") == "deployment" {
		back = "/deployments/" + url.PathEscape(d.Name)
	}
	sess := sessionOf(r)
	if sess == nil {
		// Bearer, no session: no page to come back to with a message, so
		// the answer is the message, with the API's status.
		if err != nil {
			h.fail(w, r, err)
			return
		}
		httperr.Text(w, http.StatusOK, text)
		return
	}
	h.sessions.setFlash(sess.id, f)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// act does a to d as actor, and says what it did. want names the pending
// push an approval or a rejection decides.
func (h *Handler) act(ctx context.Context, d *deployments.Deployment, actor string, a control.Action, want deploy.Decision) (string, error) {
	switch a {
	case control.Approve:
		push, err := h.svc.Approve(ctx, d, actor, want)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Approved %s (%s) for %s: it deploys now.", push.Tag, push.Digest, d.Name), nil
	case control.Reject:
		push, err := h.svc.Reject(ctx, d, actor, want)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Rejected %s for %s.", control.TagOr(push.Tag, push.Digest), d.Name), nil
	case control.Pause:
		if err := h.svc.Pause(ctx, d, actor); err != nil {
			return "", err
		}
		return fmt.Sprintf("Paused %s: pushes wait until it is resumed.", d.Name), nil
	default: // resume
		held, err := h.svc.Resume(ctx, d, actor)
		if err != nil {
			return "", err
		}
		if held == nil {
			return fmt.Sprintf("Resumed %s.", d.Name), nil
		}
		if held.State == deploy.Pending {
			return fmt.Sprintf("Resumed %s: the held push of %s awaits approval.", d.Name, control.TagOr(held.Tag, held.Digest)), nil
		}
		return fmt.Sprintf("Resumed %s: the held push of %s deploys now.", d.Name, control.TagOr(held.Tag, held.Digest)), nil
	}
}
