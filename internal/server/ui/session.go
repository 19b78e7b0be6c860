package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"sync"
	"time"
)

// Sessions of the status page. The cookie holds a random id and nothing
// else; the server maps it to the SHA-256 sum of the token that logged in
// (never the token), the form token that guards against CSRF, and a flash
// message. They live in memory only: a restart logs everyone out.
const (
	sessionCookie   = "liftoff_session"
	sessionLifetime = 12 * time.Hour
	// maxSessions bounds the memory sessions take. Only a valid token
	// makes one; past the bound the oldest goes. maxTokenSessions bounds
	// those of one token, whose oldest goes first: one token logging in
	// again and again cannot push out everyone else's.
	maxSessions      = 1000
	maxTokenSessions = 20
)

type session struct {
	sum     [sha256.Size]byte // of the token that logged in
	csrf    string            // the hidden field every form of the session sends
	expires time.Time
	flash   flash // shown once, on the next page
}

// flash is the message a page shows once after a POST redirected to it.
type flash struct {
	Text  string
	Error bool
}

type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
}

func newSessions() *sessions { return &sessions{byID: map[string]*session{}} }

// randomID returns 32 random bytes in hex.
func randomID() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// create starts a session for the token whose sum is given, and returns its
// id.
func (ss *sessions) create(sum [sha256.Size]byte, now time.Time) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var oldest, oldestMine string
	mine := 0
	for id, s := range ss.byID {
		if !now.Before(s.expires) {
			delete(ss.byID, id)
			continue
		}
		if oldest == "" || s.expires.Before(ss.byID[oldest].expires) {
			oldest = id
		}
		if s.sum == sum {
			mine++
			if oldestMine == "" || s.expires.Before(ss.byID[oldestMine].expires) {
				oldestMine = id
			}
		}
	}
	switch {
	case mine >= maxTokenSessions:
		delete(ss.byID, oldestMine)
	case len(ss.byID) >= maxSessions:
		delete(ss.byID, oldest)
	}
	id := randomID()
	s := &session{sum: sum, csrf: randomID(), expires: now.Add(sessionLifetime)}
	ss.byID[id] = s
	return id
}

// get returns a copy of the session of id, if it exists and has not
// expired.
func (ss *sessions) get(id string, now time.Time) (session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if !ok {
		return session{}, false
	}
	if !now.Before(s.expires) {
		delete(ss.byID, id)
		return session{}, false
	}
	return *s, true
}

// takeFlash returns the session's flash message and forgets it.
func (ss *sessions) takeFlash(id string) flash {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if !ok {
		return flash{}
	}
	f := s.flash
	s.flash = flash{}
	return f
}

func (ss *sessions) setFlash(id string, f flash) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.byID[id]; ok {
		s.flash = f
	}
}

func (ss *sessions) remove(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.byID, id)
}

// sameToken compares two form tokens in constant time.
func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// setSessionCookie gives the browser the session's id: HttpOnly (no
// script reads it), SameSite=Strict (no other site's page sends it),
// Secure when liftoff serves HTTPS itself or public_url is https:// (a
// proxy in front terminates TLS), for the session's lifetime.
func (h *Handler) setSessionCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(sessionLifetime / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: h.secureCookie(r)})
}

func (h *Handler) clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: h.secureCookie(r)})
}

func (h *Handler) secureCookie(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	c := h.catalogue()
	return c != nil && c.PublicHTTPS()
}
