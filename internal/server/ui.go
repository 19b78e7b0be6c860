package server

// The status page: server-rendered HTML for people, over the same tokens,
// scopes, views and actions as the management API (api.go). What a page
// shows is built by the API's view functions, and each button calls the
// function the API's handler calls, after the same scope check (target).

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
)

//go:embed ui/templates/*.html ui/static/*
var uiFiles embed.FS

// What the pages show.
const (
	uiHistoryShown    = 50 // deploys on a deployment's page
	uiDeliveriesShown = 20 // deliveries on the overview
	uiFailuresShown   = 10 // failed deploys on the overview
	uiRefreshSeconds  = 3  // how often ui.js refreshes a page
	// loginRate is how many login attempts a minute one client IP may
	// make.
	loginRate = 10
	// maxFormBody bounds a form's body: a token, a form token, a field.
	maxFormBody = 4 << 10
)

// uiPages holds each page's templates: the layout, the shared parts and
// the page. They are parsed once, from the embedded files.
var uiPages = func() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, p := range []string{"login.html", "overview.html", "deployment.html", "error.html"} {
		pages[p] = template.Must(template.New(p).Funcs(uiFuncs).ParseFS(uiFiles,
			"ui/templates/layout.html", "ui/templates/parts.html", "ui/templates/"+p))
	}
	return pages
}()

// phaseOrder is the order in which a deploy takes its steps: the order of
// the segments of its bar.
var phaseOrder = []string{deploy.StepResolve, deploy.StepPull, deploy.StepPrepare, deploy.StepBackup, deploy.StepRelease,
	deploy.StepService,
	deploy.StepStop, deploy.StepRename, deploy.StepCreate, deploy.StepStart, deploy.StepGate, deploy.StepPublish,
	deploy.StepCleanup, deploy.StepRollback}

// failureOutcomes are the outcomes the overview lists as failures.
var failureOutcomes = []deploy.Outcome{deploy.Failed, deploy.RolledBack, deploy.Refused}

// uiRoutes mounts the status page on r, beside the API (and only where the
// API is): the login form and the static files are open; every other page
// needs a session or an API token (uiAuth). Every POST must come from one
// of liftoff's own pages (CrossOriginProtection), and, with a session,
// carry its form token.
func (s *Server) uiRoutes(r chi.Router) {
	static, err := fs.Sub(uiFiles, "ui/static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusForbidden, "This form was sent from another site. Use liftoff's own page.")
	}))
	limitLogin := httprate.LimitBy(loginRate, time.Minute, clientIP,
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			s.loginPage(w, r, http.StatusTooManyRequests, "Too many attempts from your address: wait a minute and try again.")
		}))
	r.Group(func(r chi.Router) {
		r.Use(s.uiEnabled, uiHeaders, cop.Handler)
		r.Handle("/static/*", staticFiles(static))
		r.Get("/login", func(w http.ResponseWriter, r *http.Request) { s.loginPage(w, r, http.StatusOK, "") })
		r.With(limitLogin).Post("/login", s.login)
		r.Group(func(r chi.Router) {
			r.Use(s.uiAuth)
			r.Get("/", s.overviewPage)
			r.Get("/deployments/{name}", s.deploymentPage)
			r.Post("/deployments/{name}/{action}", s.uiAction)
			r.Post("/logout", s.logout)
		})
	})
}

// staticFiles serves the page's style sheet and script, and no listing of
// them.
func staticFiles(files fs.FS) http.Handler {
	h := http.StripPrefix("/static/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			notFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// uiEnabled: the page exists when the API does, with API tokens in the
// config; otherwise its paths are unknown paths (404), as the API's are.
func (s *Server) uiEnabled(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cat := s.catalogue(); cat == nil || !cat.APIEnabled() {
			notFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// uiHeaders: no script, style or frame but liftoff's own, and nothing
// cached.
func uiHeaders(next http.Handler) http.Handler {
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

// uiSessionKey keys the request's uiSession in its context.
type uiSessionKey struct{}

// uiSession is the session a request came with; there is none for a
// request with Authorization: Bearer.
type uiSession struct {
	id   string
	csrf string
}

func sessionOf(r *http.Request) *uiSession {
	s, _ := r.Context().Value(uiSessionKey{}).(*uiSession)
	return s
}

// uiAuth lets through a request with an API token (Authorization: Bearer,
// as the API) or with a session that a token opened, and puts who it is in
// the request's context, as apiAuth does. A session's token is looked up
// in the config in force at each request. Without either, a page redirects
// to the login form.
func (s *Server) uiAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cat := s.catalogue()
		// Another scheme (Basic, from a proxy that guards the page) is
		// not liftoff's: the session decides.
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
			p, known := cat.APIAuth(strings.TrimSpace(h[7:]))
			if !known {
				w.Header().Set("WWW-Authenticate", `Bearer realm="liftoff"`)
				s.loginPage(w, r, http.StatusUnauthorized, "That is not an API token of liftoff's config.")
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
			return
		}
		if c, err := r.Cookie(sessionCookie); err == nil {
			if sess, ok := s.sessions.get(c.Value, s.now()); ok {
				if p, ok := cat.APIAuthSum(sess.sum); ok {
					ctx := context.WithValue(r.Context(), principalKey{}, p)
					ctx = context.WithValue(ctx, uiSessionKey{}, &uiSession{id: c.Value, csrf: sess.csrf})
					next.ServeHTTP(w, r.WithContext(ctx))
					return
				}
				s.sessions.remove(c.Value) // its token is no longer in the config
			}
			s.clearSessionCookie(w, r)
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
		s.loginPage(w, r, http.StatusUnauthorized, "Your session has ended: log in again.")
	})
}

// login opens a session for a valid API token that may read.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		s.loginPage(w, r, http.StatusBadRequest, "The form could not be read: send the token alone.")
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	p, ok := s.catalogue().APIAuth(token)
	if !ok {
		// Nothing of what was typed is logged: it may be a token of
		// something else.
		s.log.Info().Str("remote", r.RemoteAddr).Msg("ui: login refused: not an API token")
		s.loginPage(w, r, http.StatusUnauthorized, "That is not an API token of liftoff's config. Check it and try again.")
		return
	}
	if err := mayPage(p); err != nil {
		s.loginPage(w, r, http.StatusForbidden, fmt.Sprintf("The token %s lacks scope %s, which the status page needs.",
			p.Name, deployments.Scope(deployments.VerbRead, "")))
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.remove(c.Value) // a new login replaces the session it came with
	}
	id := s.sessions.create(sha256.Sum256([]byte(token)), s.now())
	s.setSessionCookie(w, r, id)
	s.log.Info().Str("actor", p.Name).Str("remote", r.RemoteAddr).Msg("ui: logged in")
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
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !s.checkForm(w, r) {
		return
	}
	if sess := sessionOf(r); sess != nil {
		s.sessions.remove(sess.id)
		s.clearSessionCookie(w, r)
		s.log.Info().Str("actor", principal(r).Name).Msg("ui: logged out")
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// checkForm reads a POST's form and, for a session, checks its form token:
// a page of another site cannot know it. A request with a Bearer token
// needs none (a browser never adds that header by itself). It answers the
// request and returns false if the form is refused.
func (s *Server) checkForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "The form could not be read.")
		return false
	}
	if sess := sessionOf(r); sess != nil && !sameToken(r.PostForm.Get("csrf"), sess.csrf) {
		s.errorPage(w, r, http.StatusForbidden, "This form is stale or was not sent from liftoff's page: reload the page and try again.")
		return false
	}
	return true
}

// mayPage checks that p may see the pages: as every GET of the API, it
// takes read.
func mayPage(p deployments.Principal) error {
	if !p.Can(deployments.VerbRead, "") {
		return fmt.Errorf("%w: this token lacks scope %s", errForbidden, deployments.Scope(deployments.VerbRead, ""))
	}
	return nil
}

// uiAction is a button: approve, reject, pause or resume. It takes the
// scope the API's route takes and calls what the API's handler calls,
// then goes back to the page it came from with what happened.
func (s *Server) uiAction(w http.ResponseWriter, r *http.Request) {
	if !s.checkForm(w, r) {
		return
	}
	verb, ok := actionVerbs[chi.URLParam(r, "action")]
	if !ok {
		s.errorPage(w, r, http.StatusNotFound, "There is no such button.")
		return
	}
	d, err := s.target(r, verb)
	if err != nil {
		s.uiError(w, r, err)
		return
	}
	text, err := s.act(r.Context(), d, principal(r), chi.URLParam(r, "action"))
	f := flash{Text: text}
	if err != nil {
		f = flash{Text: s.uiErrorText(r, err), Error: true}
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
			s.uiError(w, r, err)
			return
		}
		writeText(w, http.StatusOK, text)
		return
	}
	s.sessions.setFlash(sess.id, f)
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// act does action to d as p, and says what it did.
func (s *Server) act(ctx context.Context, d *deployments.Deployment, p deployments.Principal, action string) (string, error) {
	switch action {
	case "approve", "reject":
		push, err := s.decide(ctx, d, p, action)
		if err != nil {
			return "", err
		}
		if action == "approve" {
			return fmt.Sprintf("Approved %s for %s: it deploys now.", tagOr(push.Tag, push.Digest), d.Name), nil
		}
		return fmt.Sprintf("Rejected %s for %s.", tagOr(push.Tag, push.Digest), d.Name), nil
	case "pause":
		if err := s.pause(ctx, d, p); err != nil {
			return "", err
		}
		return fmt.Sprintf("Paused %s: pushes wait until it is resumed.", d.Name), nil
	default: // resume
		held, err := s.resume(ctx, d, p)
		if err != nil {
			return "", err
		}
		if held == nil {
			return fmt.Sprintf("Resumed %s.", d.Name), nil
		}
		if held.State == deploy.Pending {
			return fmt.Sprintf("Resumed %s: the held push of %s awaits approval.", d.Name, tagOr(held.Tag, held.Digest)), nil
		}
		return fmt.Sprintf("Resumed %s: the held push of %s deploys now.", d.Name, tagOr(held.Tag, held.Digest)), nil
	}
}

// --- pages ---

// uiPage is what every template gets.
type uiPage struct {
	Title   string
	Who     string   // the token's name; "" on the login page
	Scopes  []string // its scopes
	CSRF    string   // the session's form token; "" with a Bearer token
	Session bool
	Flash   flash
	Message string // the login or error page's message
	Next    string // the login form: the local page to go to once logged in
	Refresh int    // seconds between refreshes; 0: none
	Now     time.Time

	// The overview.
	Groups     []uiGroup
	Deliveries []apiv1.Delivery
	Failures   []uiDeploy

	// A deployment's page.
	Deployment *uiDeployment
	History    []uiDeploy
}

// uiGroup is the deployments of one environment.
type uiGroup struct {
	Environment string
	Deployments []uiDeployment
}

// uiDeployment is the API's view of a deployment, its newest deploy with
// its phases, and which buttons the caller may use.
type uiDeployment struct {
	apiv1.Deployment
	LastDeploy            *uiDeploy
	CanDeploy, CanApprove bool
	// Unreachable: the container engine did not answer (why); what runs
	// is unknown.
	Unreachable string
}

// uiDeploy is the API's view of a deploy, with its bar.
type uiDeploy struct {
	apiv1.Deploy
	Bar  []uiPhase
	Took float64 // seconds from start to end (or to now while it runs)
}

// uiPhase is one segment of a deploy's bar, on a scale of 100.
type uiPhase struct {
	Name     string
	Seconds  float64
	X, Width float64
}

func (s *Server) newPage(r *http.Request, title string) uiPage {
	p := principal(r)
	pg := uiPage{Title: title, Who: p.Name, Scopes: p.Scopes(), Refresh: uiRefreshSeconds, Now: s.now().UTC()}
	if sess := sessionOf(r); sess != nil {
		pg.Session, pg.CSRF = true, sess.csrf
		if r.Header.Get("X-Liftoff-Refresh") == "" { // ui.js's refresh leaves the flash to the page
			pg.Flash = s.sessions.takeFlash(sess.id)
		}
	}
	return pg
}

func (s *Server) overviewPage(w http.ResponseWriter, r *http.Request) {
	if err := mayPage(principal(r)); err != nil {
		s.uiError(w, r, err)
		return
	}
	ctx := r.Context()
	pg := s.newPage(r, "liftoff")
	at := map[string]int{} // environment → index in pg.Groups
	for _, d := range s.catalogue().All() {
		ud, err := s.uiDeployment(ctx, r, d)
		if err != nil {
			s.uiError(w, r, err)
			return
		}
		i, ok := at[d.Environment]
		if !ok {
			i = len(pg.Groups)
			at[d.Environment] = i
			pg.Groups = append(pg.Groups, uiGroup{Environment: d.Environment})
		}
		pg.Groups[i].Deployments = append(pg.Groups[i].Deployments, ud)
	}
	ds, _, err := s.history.Deliveries(ctx, uiDeliveriesShown, 0)
	if err != nil {
		s.uiError(w, r, err)
		return
	}
	pg.Deliveries = deliveryViews(ds)
	var failed []deploy.Record
	for _, o := range failureOutcomes {
		recs, _, err := s.history.Deploys(ctx, deploy.DeployQuery{Outcome: string(o), Limit: uiFailuresShown})
		if err != nil {
			s.uiError(w, r, err)
			return
		}
		failed = append(failed, recs...)
	}
	slices.SortFunc(failed, func(a, b deploy.Record) int { return cmp.Compare(b.ID, a.ID) }) // newest first
	pg.Failures = s.uiDeploys(failed[:min(len(failed), uiFailuresShown)])
	s.render(w, r, http.StatusOK, "overview.html", pg)
}

func (s *Server) deploymentPage(w http.ResponseWriter, r *http.Request) {
	d, err := s.target(r, deployments.VerbRead)
	if err != nil {
		s.uiError(w, r, err)
		return
	}
	ud, err := s.uiDeployment(r.Context(), r, d)
	if err != nil {
		s.uiError(w, r, err)
		return
	}
	recs, _, err := s.history.Deploys(r.Context(), deploy.DeployQuery{Deployment: d.Name, Limit: uiHistoryShown})
	if err != nil {
		s.uiError(w, r, err)
		return
	}
	pg := s.newPage(r, d.Name+" · liftoff")
	pg.Deployment, pg.History = &ud, s.uiDeploys(recs)
	s.render(w, r, http.StatusOK, "deployment.html", pg)
}

// uiDeployment is the API's view of d (view), with its newest deploy's
// phases and the caller's buttons.
func (s *Server) uiDeployment(ctx context.Context, r *http.Request, d *deployments.Deployment) (uiDeployment, error) {
	v, last, err := s.viewLast(ctx, d)
	var unreachable string
	switch {
	case errors.Is(err, errUnavailable):
		// What runs is unknown; the rest is worth showing all the more.
		unreachable = err.Error()
	case err != nil:
		return uiDeployment{}, err
	}
	p := principal(r)
	ud := uiDeployment{Deployment: v, CanDeploy: p.Can(deployments.VerbDeploy, d.Environment),
		CanApprove: p.Can(deployments.VerbApprove, d.Environment), Unreachable: unreachable}
	if last != nil {
		ud.LastDeploy = &s.uiDeploys([]deploy.Record{*last})[0]
	}
	return ud, nil
}

// uiDeploys is deployViews, with a bar for each deploy.
func (s *Server) uiDeploys(recs []deploy.Record) []uiDeploy {
	out := []uiDeploy{}
	for _, v := range deployViews(recs) {
		end := s.now()
		if v.Ended != nil {
			end = *v.Ended
		}
		out = append(out, uiDeploy{Deploy: v, Bar: bar(v.Phases), Took: max(end.Sub(v.Started).Seconds(), 0)})
	}
	return out
}

// bar lays phases end to end on a scale of 100, in the order a deploy
// takes them.
func bar(phases map[string]float64) []uiPhase {
	names := slices.Sorted(maps.Keys(phases))
	slices.SortStableFunc(names, func(a, b string) int { return rank(a) - rank(b) })
	var total float64
	for _, n := range names {
		total += phases[n]
	}
	var out []uiPhase
	x := 0.0
	for _, n := range names {
		w := 0.0
		if total > 0 {
			w = phases[n] / total * 100
		}
		out = append(out, uiPhase{Name: n, Seconds: phases[n], X: round2(x), Width: round2(w)})
		x += w
	}
	return out
}

func rank(phase string) int {
	if i := slices.Index(phaseOrder, phase); i >= 0 {
		return i
	}
	return len(phaseOrder)
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// uiError answers a page's failure with the API's status for it, and the
// API's reason (or "internal error", logged).
func (s *Server) uiError(w http.ResponseWriter, r *http.Request, err error) {
	s.errorPage(w, r, apiStatus(err), s.uiErrorText(r, err))
}

func (s *Server) uiErrorText(r *http.Request, err error) string {
	if apiStatus(err) == http.StatusInternalServerError {
		s.log.Error().Err(err).Str("route", routePattern(r)).Msg("ui: internal error")
		return "internal error"
	}
	return err.Error()
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	pg := s.newPage(r, http.StatusText(status)+" · liftoff")
	pg.Message, pg.Refresh = msg, 0
	s.render(w, r, status, "error.html", pg)
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	pg := uiPage{Title: "Log in · liftoff", Message: msg, Now: s.now().UTC()}
	next := r.URL.Query().Get("next")
	if v := r.PostForm.Get("next"); v != "" {
		next = v // the form again, after a wrong token
	}
	if localPath(next) {
		pg.Next = next
	}
	s.render(w, r, status, "login.html", pg)
}

// render executes a page into a buffer first, so that a template error is
// a clean 500.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, pg uiPage) {
	var b bytes.Buffer
	if err := uiPages[name].ExecuteTemplate(&b, "layout", pg); err != nil {
		s.log.Error().Err(err).Str("page", name).Str("route", routePattern(r)).Msg("ui: rendering a page")
		writeText(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// --- template functions ---

var uiFuncs = template.FuncMap{
	"short":   apiv1.ShortDigest,
	"when":    when,
	"iso":     iso,
	"ago":     ago,
	"secs":    apiv1.Seconds,
	"outcome": func(o *string) string { return deref(o, "running") },
	"deref":   func(s *string) string { return deref(s, "") },
	"path":    url.PathEscape,
	// dict and button hand a part of a page what it needs.
	"dict": func(pg uiPage, d uiDeployment, from string) cardData { return cardData{Page: pg, D: d, From: from} },
	"button": func(pg uiPage, name, action, label, from string) buttonData {
		return buttonData{Name: name, Action: action, Label: label, From: from, CSRF: pg.CSRF}
	},
}

// cardData is what the card template gets: the page, the deployment, and
// the page a button goes back to.
type cardData struct {
	Page uiPage
	D    uiDeployment
	From string
}

type buttonData struct {
	Name, Action, Label, From, CSRF string
}

// when formats a time (time.Time or *time.Time), UTC; "" for none.
func when(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format("2006-01-02 15:04:05 UTC")
	case *time.Time:
		if v == nil {
			return ""
		}
		return when(*v)
	}
	return ""
}

// iso formats a time (time.Time or *time.Time) as RFC 3339, UTC, for a
// <time datetime>; "" for none.
func iso(t any) string {
	switch v := t.(type) {
	case time.Time:
		if v.IsZero() {
			return ""
		}
		return v.UTC().Format(time.RFC3339)
	case *time.Time:
		if v != nil {
			return iso(*v)
		}
	}
	return ""
}

// ago is apiv1.Ago of a time.Time or a *time.Time ("" for nil).
func ago(now time.Time, t any) string {
	switch v := t.(type) {
	case time.Time:
		return apiv1.Ago(now, v)
	case *time.Time:
		if v != nil {
			return apiv1.Ago(now, *v)
		}
	}
	return ""
}

func deref(s *string, none string) string {
	if s == nil {
		return none
	}
	return *s
}
