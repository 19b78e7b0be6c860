package ui

import (
	"html/template"
	"net/url"
	"time"

	"github.com/liftoff-deploy/liftoff/apiv1"
)

var funcs = template.FuncMap{
	"short":   apiv1.ShortDigest,
	"when":    when,
	"iso":     iso,
	"ago":     ago,
	"secs":    apiv1.Seconds,
	"outcome": func(o *string) string { return deref(o, "running") },
	"deref":   func(s *string) string { return deref(s, "") },
	"path":    url.PathEscape,
	// dict and button hand a part of a page what it needs.
	"dict": func(pg page, d deploymentCard, from string) cardData { return cardData{Page: pg, D: d, From: from} },
	"button": func(pg page, name, action, label, from string) buttonData {
		return buttonData{Name: name, Action: action, Label: label, From: from, CSRF: pg.CSRF}
	},
	// decide is the button of an approval or a rejection: it names the
	// pending push shown (its request id and digest), so that a push that
	// replaced it meanwhile is not what gets decided.
	"decide": func(pg page, name, action, label, from string, request int64, digest string) buttonData {
		return buttonData{Name: name, Action: action, Label: label, From: from, CSRF: pg.CSRF, Request: request, Digest: digest}
	},
}

// cardData is what the card template gets: the page, the deployment, and
// the page a button goes back to.
type cardData struct {
	Page page
	D    deploymentCard
	From string
}

type buttonData struct {
	Name, Action, Label, From, CSRF string
	Request                         int64  // approve, reject: the pending push's request id
	Digest                          string // and its digest
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
