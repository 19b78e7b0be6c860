package ui

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"html/template"
	"maps"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/liftoff-deploy/liftoff/apiv1"
	"github.com/liftoff-deploy/liftoff/internal/control"
	"github.com/liftoff-deploy/liftoff/internal/deploy"
	"github.com/liftoff-deploy/liftoff/internal/deployments"
	"github.com/liftoff-deploy/liftoff/internal/server/accesslog"
	"github.com/liftoff-deploy/liftoff/internal/server/httperr"
)

// pages holds each page's templates: the layout, the shared parts and
// the page. They are parsed once, from the embedded files.
var pages = func() map[string]*template.Template {
	pages := map[string]*template.Template{}
	for _, p := range []string{"login.html", "overview.html", "deployment.html", "error.html"} {
		pages[p] = template.Must(template.New(p).Funcs(funcs).ParseFS(files,
			"templates/layout.html", "templates/parts.html", "templates/"+p))
	}
	return pages
}()

// failureOutcomes are the outcomes the overview lists as failures.
var failureOutcomes = []deploy.Outcome{deploy.Failed, deploy.RolledBack, deploy.Refused}

// page is what every template gets.
type page struct {
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
	Groups     []group
	Deliveries []apiv1.Delivery
	Failures   []deployRow

	// A deployment's page.
	Deployment *deploymentCard
	History    []deployRow
}

// group is the deployments of one environment.
type group struct {
	Environment string
	Deployments []deploymentCard
}

// deploymentCard is the API's view of a deployment, its newest deploy with
// its phases, and which buttons the caller may use.
type deploymentCard struct {
	apiv1.Deployment
	LastDeploy            *deployRow
	CanDeploy, CanApprove bool
	// Unreachable: the container engine did not answer (why); what runs
	// is unknown.
	Unreachable string
	// Previews are the deployment's previews that run, with links.
	Previews []apiv1.Preview
}

// deployRow is the API's view of a deploy, with its bar.
type deployRow struct {
	apiv1.Deploy
	Bar  []phase
	Took float64 // seconds from start to end (or to now while it runs)
}

// phase is one segment of a deploy's bar, on a scale of 100.
type phase struct {
	Name     string
	Seconds  float64
	X, Width float64
}

func (h *Handler) newPage(r *http.Request, title string) page {
	p := principal(r)
	pg := page{Title: title, Who: p.Name, Scopes: p.Scopes(), Refresh: refreshSeconds, Now: h.now().UTC()}
	if sess := sessionOf(r); sess != nil {
		pg.Session, pg.CSRF = true, sess.csrf
		if r.Header.Get("X-Liftoff-Refresh") == "" { // ui.js's refresh leaves the flash to the page
			pg.Flash = h.sessions.takeFlash(sess.id)
		}
	}
	return pg
}

func (h *Handler) overviewPage(w http.ResponseWriter, r *http.Request) {
	if err := mayPage(principal(r)); err != nil {
		h.fail(w, r, err)
		return
	}
	ctx := r.Context()
	pg := h.newPage(r, "liftoff")
	at := map[string]int{} // environment → index in pg.Groups
	for _, d := range h.catalogue().All() {
		ud, err := h.card(ctx, r, d)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		i, ok := at[d.Environment]
		if !ok {
			i = len(pg.Groups)
			at[d.Environment] = i
			pg.Groups = append(pg.Groups, group{Environment: d.Environment})
		}
		pg.Groups[i].Deployments = append(pg.Groups[i].Deployments, ud)
	}
	ds, _, err := h.svc.ListDeliveries(ctx, deliveriesShown, 0)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	pg.Deliveries = control.Deliveries(ds)
	var failed []deploy.Record
	for _, o := range failureOutcomes {
		recs, _, err := h.svc.ListDeploys(ctx, deploy.DeployQuery{Outcome: string(o), Limit: failuresShown})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		failed = append(failed, recs...)
	}
	slices.SortFunc(failed, func(a, b deploy.Record) int { return cmp.Compare(b.ID, a.ID) }) // newest first
	pg.Failures = h.rows(failed[:min(len(failed), failuresShown)])
	h.render(w, r, http.StatusOK, "overview.html", pg)
}

func (h *Handler) deploymentPage(w http.ResponseWriter, r *http.Request) {
	d, err := h.target(r, deployments.VerbRead)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ud, err := h.card(r.Context(), r, d)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	recs, _, err := h.svc.ListDeploys(r.Context(), deploy.DeployQuery{Deployment: d.Name, Limit: historyShown})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	pg := h.newPage(r, d.Name+" · liftoff")
	pg.Deployment, pg.History = &ud, h.rows(recs)
	h.render(w, r, http.StatusOK, "deployment.html", pg)
}

// deploymentCard is the API's view of d (view), with its newest deploy's
// phases and the caller's buttons.
func (h *Handler) card(ctx context.Context, r *http.Request, d *deployments.Deployment) (deploymentCard, error) {
	v, last, err := h.svc.View(ctx, d)
	var unreachable string
	switch {
	case errors.Is(err, control.ErrUnavailable):
		// What runs is unknown; the rest is worth showing all the more.
		unreachable = err.Error()
	case err != nil:
		return deploymentCard{}, err
	}
	p := principal(r)
	ud := deploymentCard{Deployment: v, CanDeploy: p.Can(deployments.VerbDeploy, d.Environment),
		CanApprove: p.Can(deployments.VerbApprove, d.Environment), Unreachable: unreachable}
	if d.Previews != nil {
		ud.Previews = h.svc.Previews(d)
	}
	if last != nil {
		ud.LastDeploy = &h.rows([]deploy.Record{*last})[0]
	}
	return ud, nil
}

// rows is control.Deploys, with a bar for each deploy.
func (h *Handler) rows(recs []deploy.Record) []deployRow {
	out := []deployRow{}
	for _, v := range control.Deploys(recs) {
		end := h.now()
		if v.Ended != nil {
			end = *v.Ended
		}
		out = append(out, deployRow{Deploy: v, Bar: bar(v.Phases), Took: max(end.Sub(v.Started).Seconds(), 0)})
	}
	return out
}

// bar lays phases end to end on a scale of 100, in the order a deploy
// takes them.
func bar(phases map[string]float64) []phase {
	names := slices.SortedFunc(maps.Keys(phases), apiv1.CompareSteps)
	var total float64
	for _, n := range names {
		total += phases[n]
	}
	var out []phase
	x := 0.0
	for _, n := range names {
		w := 0.0
		if total > 0 {
			w = phases[n] / total * 100
		}
		out = append(out, phase{Name: n, Seconds: phases[n], X: round2(x), Width: round2(w)})
		x += w
	}
	return out
}

func round2(f float64) float64 { return math.Round(f*100) / 100 }

// fail answers a page's failure with the API's status for it, and the
// API's reason (or "internal error", logged).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	h.errorPage(w, r, httperr.Status(err), h.errorText(r, err))
}

func (h *Handler) errorText(r *http.Request, err error) string {
	if httperr.Status(err) == http.StatusInternalServerError {
		h.log.Error().Err(err).Str("route", accesslog.Route(r)).Msg("ui: internal error")
		return "internal error"
	}
	return err.Error()
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	pg := h.newPage(r, http.StatusText(status)+" · liftoff")
	pg.Message, pg.Refresh = msg, 0
	h.render(w, r, status, "error.html", pg)
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	pg := page{Title: "Log in · liftoff", Message: msg, Now: h.now().UTC()}
	next := r.URL.Query().Get("next")
	if v := r.PostForm.Get("next"); v != "" {
		next = v // the form again, after a wrong token
	}
	if localPath(next) {
		pg.Next = next
	}
	h.render(w, r, status, "login.html", pg)
}

// render executes a page into a buffer first, so that a template error is
// a clean 500.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, name string, pg page) {
	var b bytes.Buffer
	if err := pages[name].ExecuteTemplate(&b, "layout", pg); err != nil {
		h.log.Error().Err(err).Str("page", name).Str("route", accesslog.Route(r)).Msg("ui: rendering a page")
		httperr.Text(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(b.Bytes())
}
