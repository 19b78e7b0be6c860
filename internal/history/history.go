// Package history is liftoff's deploy journal and history: an embedded
// SQLite file (modernc.org/sqlite, no cgo) implementing deploy.Journal.
//
// The engine writes each step of a deploy here before it takes it, so the
// file must never be lost, silently replaced or half-understood: Open
// refuses a file it cannot read, a file of another application and a file
// whose schema is newer than this binary, and leaves such files exactly as
// they were. Writes go through one connection, so concurrent deploys queue
// in Go instead of failing with SQLITE_BUSY; reads use a pool of their own,
// which WAL mode lets run beside the writer.
package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/liftoff-deploy/liftoff/internal/deploy"
)

var _ deploy.Journal = (*Store)(nil)

// ErrCorrupt means the file is not a SQLite database this package can read:
// random bytes, a truncated or damaged file. Open leaves such a file alone.
var ErrCorrupt = errors.New("not a readable SQLite database (corrupt, truncated or another kind of file)")

// ErrForeign means the file is a SQLite database of some other application.
var ErrForeign = errors.New("a SQLite database of another application, not a liftoff history")

// ErrTooNew means the file was migrated by a newer liftoff than this one.
var ErrTooNew = errors.New("schema version newer than this liftoff knows")

// ErrFinished is returned by Step and Finish for a deploy already finished:
// the journal never rewrites a deploy's outcome.
var ErrFinished = errors.New("deploy already finished")

// Sync is SQLite's synchronous setting for the journal.
type Sync string

const (
	// SyncFull fsyncs the WAL on every commit: a journaled step survives a
	// crash of the OS or a power cut, not only of liftoff. The default: a
	// deploy makes about ten journal writes around Docker calls that take
	// tens to hundreds of milliseconds each, so the fsync is noise, and a
	// lost step after a power cut is exactly what reconcile cannot afford.
	SyncFull Sync = "FULL"
	// SyncNormal fsyncs only at checkpoints. Commits still survive SIGKILL
	// of the process (they are in the OS's page cache), but the last ones
	// may be lost if the machine itself goes down.
	SyncNormal Sync = "NORMAL"
)

// Option configures Open.
type Option func(*options)

type options struct {
	busy time.Duration
	sync Sync
	now  func() time.Time
}

// WithBusyTimeout sets how long a statement waits for a lock held by
// another connection (another process on the same file, or a checkpoint)
// before failing. Default 5s.
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) { o.busy = d }
}

// WithSync sets the synchronous mode; see Sync. Default SyncFull.
func WithSync(s Sync) Option {
	return func(o *options) { o.sync = s }
}

// WithClock sets the clock used when Begin or Finish get a record without a
// start or end time. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Store is the SQLite history. It is safe for concurrent use.
type Store struct {
	path string
	w    *sql.DB // one connection: every write, in order
	r    *sql.DB // readers; the same as w for an in-memory database
	now  func() time.Time

	// The places of deliveries in the list (the rowid of those written),
	// and those kept in memory only (KeepDelivery).
	seqs deliverySeqs
	kept keptDeliveries
}

const memory = ":memory:"

// Open opens the history file at path, creating it if it does not exist and
// migrating its schema to the newest this binary knows. path ":memory:"
// opens a private in-memory database (for tests). The directory must exist.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{busy: 5 * time.Second, sync: SyncFull, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.sync != SyncFull && o.sync != SyncNormal {
		return nil, fmt.Errorf("history %s: unknown sync mode %q", path, o.sync)
	}
	if path == "" {
		return nil, errors.New("history: no file given")
	}
	if path != memory {
		if err := checkFile(path); err != nil {
			return nil, err
		}
	}

	s := &Store{path: path, now: o.now}
	var err error
	s.w, err = sql.Open("sqlite", dsn(path, o, "_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	// One writer connection: SQLite allows one writer at a time anyway, and
	// queueing in database/sql is fairer and cheaper than busy-waiting. For
	// ":memory:" it is also what keeps the database alive: it lives and dies
	// with its connection.
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)

	if err := s.check(ctx); err != nil {
		s.w.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		return nil, err
	}
	var last int64
	if err := s.w.QueryRowContext(ctx, `SELECT coalesce(max(rowid), 0) FROM deliveries`).Scan(&last); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("history %s: %w", path, err)
	}
	s.seqs.raise(last)

	s.r = s.w
	if path != memory {
		s.r, err = sql.Open("sqlite", dsn(path, o, "_pragma=query_only(1)"))
		if err != nil {
			s.w.Close()
			return nil, fmt.Errorf("history %s: %w", path, err)
		}
		s.r.SetMaxOpenConns(4)
		s.r.SetMaxIdleConns(4)
	}
	return s, nil
}

// Close closes the file. SQLite checkpoints the WAL into the main file as
// the last connection closes.
func (s *Store) Close() error {
	var errs []error
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("history %s: close: %w", s.path, err)
	}
	return nil
}

// dsn builds the driver's connection string. Per-connection pragmas go in
// the DSN so that every connection the pools open gets them. journal_mode
// is deliberately absent: it writes to the file, and Open sets it only once
// the file has been checked.
func dsn(path string, o options, extra ...string) string {
	if strings.HasPrefix(path, "file:") {
		// The driver opens with SQLITE_OPEN_URI: keep a file that happens
		// to be called "file:..." a plain file name.
		path = "./" + path
	}
	q := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", o.busy.Milliseconds()),
		"_pragma=foreign_keys(1)",
		"_pragma=synchronous(" + string(o.sync) + ")",
	}
	return path + "?" + strings.Join(append(q, extra...), "&")
}

// checkFile gives clear errors for the cases SQLite reports obscurely or
// would "fix" by writing: a missing directory, a directory in place of the
// file, and a file that is not a SQLite database at all (which SQLite would
// otherwise only notice at the first query).
func checkFile(path string) error {
	if strings.ContainsRune(path, '?') {
		return fmt.Errorf("history %s: file names with '?' are not supported", path)
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("history %s: directory %s does not exist (liftoff creates the file, not its directory): %w", path, dir, err)
	} else if err != nil {
		return fmt.Errorf("history %s: %w", path, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("history %s: %s is not a directory", path, dir)
	}

	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Created here, empty and 0600, rather than by SQLite with the
		// umask's 0644: the history names deployments, digests, pushers
		// and tokens' names. SQLite gives its -wal and -shm files the
		// database file's mode.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return checkFile(path) // created meanwhile: check it as found
		}
		if err != nil {
			return fmt.Errorf("history %s: %w", path, err)
		}
		return f.Close()
	}
	if err != nil {
		return fmt.Errorf("history %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("history %s: %w", path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("history %s: is a directory, not a file", path)
	}
	if fi.Size() == 0 {
		return nil // SQLite treats an empty file as an empty database
	}
	// Every SQLite database starts with this 16-byte magic in a 100-byte
	// header.
	const magic = "SQLite format 3\x00"
	head := make([]byte, 100)
	if _, err := io.ReadFull(f, head); err != nil || string(head[:len(magic)]) != magic {
		return corrupt(path, errors.New("no SQLite header"))
	}
	return nil
}

func corrupt(path string, cause error) error {
	return fmt.Errorf("history %s: %w: %v; the file was left as it is: move it aside or use another file", path, ErrCorrupt, cause)
}

// tooNewError keeps the exact wording operators see while still matching
// errors.Is(err, ErrTooNew).
type tooNewError struct {
	path          string
	version, know int
}

func (e *tooNewError) Error() string {
	return fmt.Sprintf("history %s: schema version %d is newer than this liftoff (knows up to %d); upgrade liftoff or use another file", e.path, e.version, e.know)
}

func (e *tooNewError) Unwrap() error { return ErrTooNew }

// isCorrupt tells SQLite's "this file is damaged" errors from others (a
// full disk, permissions), which must not be reported as corruption.
func isCorrupt(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// check reads the file's identity and version, and only reads: whatever it
// finds wrong, the file is left as it was.
func (s *Store) check(ctx context.Context) error {
	fail := func(what string, err error) error {
		if isCorrupt(err) {
			return corrupt(s.path, err)
		}
		return fmt.Errorf("history %s: %s: %w", s.path, what, err)
	}
	var appID, version, tables int
	if err := s.w.QueryRowContext(ctx, "PRAGMA application_id").Scan(&appID); err != nil {
		return fail("read application id", err)
	}
	if err := s.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fail("read schema version", err)
	}
	if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&tables); err != nil {
		return fail("read schema", err)
	}
	known := len(migrations())
	switch {
	case appID != 0 && appID != applicationID:
		return fmt.Errorf("history %s: %w (application id %#x)", s.path, ErrForeign, appID)
	case version > known:
		return &tooNewError{path: s.path, version: version, know: known}
	case appID == 0 && (version != 0 || tables != 0):
		// Every liftoff schema sets the application id in its first
		// migration, so a database with content but without our id is
		// someone else's.
		return fmt.Errorf("history %s: %w (it has tables but no liftoff application id)", s.path, ErrForeign)
	}
	if version == 0 {
		return nil // new, empty file
	}
	// A file truncated at a page boundary or damaged inside still has a
	// good header and schema; quick_check reads every page (milliseconds
	// for a history of thousands of deploys) so that damage is found now,
	// not in the middle of a deploy.
	rows, err := s.w.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return fail("check integrity", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return fail("check integrity", err)
		}
		if p != "ok" && len(problems) < 3 {
			problems = append(problems, p)
		}
	}
	if err := rows.Err(); err != nil {
		return fail("check integrity", err)
	}
	if len(problems) > 0 {
		return corrupt(s.path, errors.New(strings.Join(problems, "; ")))
	}
	return nil
}
