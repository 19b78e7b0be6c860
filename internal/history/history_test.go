package history

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// open opens a fresh history file in a temporary directory and closes it
// when the test ends.
func open(t testing.TB, opts ...Option) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "liftoff.db")
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

// pragma reads an integer pragma straight from the file, bypassing Store.
func pragma(t *testing.T, path, name string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA " + name).Scan(&v); err != nil {
		t.Fatalf("PRAGMA %s: %v", name, err)
	}
	return v
}

// refused opens path, expects an error containing every one of want, and
// checks the file was not changed, not even by a byte.
func refused(t *testing.T, path string, target error, want ...string) {
	t.Helper()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
	if err == nil {
		s.Close()
		t.Fatalf("Open(%s) succeeded, want an error", path)
	}
	t.Logf("Open: %v", err)
	if target != nil && !errors.Is(err, target) {
		t.Errorf("error %v is not %v", err, target)
	}
	for _, w := range append(want, path) {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("Open changed the refused file (%d bytes before, %d after)", len(before), len(after))
	}
}

func TestOpenCreatesFile(t *testing.T) {
	s, path := open(t)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("file not created: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := pragma(t, path, "user_version"), len(migrations()); got != want {
		t.Errorf("user_version = %d, want %d", got, want)
	}
	if got := pragma(t, path, "application_id"); got != applicationID {
		t.Errorf("application_id = %#x, want %#x", got, applicationID)
	}
	var mode string
	db, _ := sql.Open("sqlite", path)
	defer db.Close()
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestOpenTwiceKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "liftoff.db")
	for i := range 3 {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		if _, err := s.Begin(ctx, record("web")); err != nil {
			t.Fatal(err)
		}
		rs, err := s.List(ctx, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) != i+1 {
			t.Errorf("Open #%d: %d deploys, want %d", i+1, len(rs), i+1)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := pragma(t, path, "user_version"), len(migrations()); got != want {
		t.Errorf("user_version = %d, want %d", got, want)
	}
}

func TestOpenMemory(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, err := s.Begin(ctx, record("web"))
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := s.Unfinished(ctx); err != nil || len(rs) != 1 || rs[0].ID != id {
		t.Fatalf("Unfinished = %v, %v", rs, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	s, path := open(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	refused(t, path, ErrTooNew, fmt.Sprintf("schema version 99 is newer than this liftoff (knows up to %d)", len(migrations())), "upgrade liftoff")
}

func TestOpenRefusesGarbage(t *testing.T) {
	tests := map[string][]byte{
		"random":       bytes.Repeat([]byte("liftoff\x00\xff\x13"), 1000),
		"short":        []byte("SQLite format 3"),
		"text":         []byte("listen: :8080\n"),
		"header only":  append([]byte("SQLite format 3\x00"), make([]byte, 84)...),
		"bad page one": append([]byte("SQLite format 3\x00\x10\x00\x02\x02"), bytes.Repeat([]byte{0xaa}, 4096)...),
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "liftoff.db")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			refused(t, path, ErrCorrupt)
		})
	}
}

func TestOpenRefusesTruncated(t *testing.T) {
	ctx := context.Background()
	s, path := open(t)
	// Enough rows for the file to span many pages.
	for range 300 {
		r := record("web")
		r.Error = strings.Repeat("x", 200)
		if _, err := s.Begin(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Cut at a page boundary: the header and schema still read fine, only
	// the data pages are gone.
	if err := os.Truncate(path, fi.Size()/4096/2*4096); err != nil {
		t.Fatal(err)
	}
	refused(t, path, ErrCorrupt)
}

func TestOpenRefusesForeignDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE grafana (id INTEGER)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	refused(t, path, ErrForeign)

	if db, err = sql.Open("sqlite", path); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA application_id = 42"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	refused(t, path, ErrForeign, "0x2a")
}

func TestOpenBadPath(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	missing := filepath.Join(dir, "no", "such", "dir", "liftoff.db")
	_, err := Open(ctx, missing)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(dir, "no", "such", "dir")+" does not exist") {
		t.Errorf("Open in a missing directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "no")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open created the missing directory: %v", err)
	}

	if _, err := Open(ctx, dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("Open of a directory: %v", err)
	}
	if _, err := Open(ctx, ""); err == nil {
		t.Error("Open of an empty path succeeded")
	}
	if _, err := Open(ctx, filepath.Join(dir, "x.db"), WithSync("OFF")); err == nil {
		t.Error("Open with synchronous OFF succeeded")
	}
}

func TestOpenEmptyFile(t *testing.T) {
	// An empty file is what SQLite itself leaves when a process dies while
	// creating one: it is a valid, empty database, not corruption.
	path := filepath.Join(t.TempDir(), "liftoff.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestOpenNameLooksLikeURI(t *testing.T) {
	// "file:" names are URIs to SQLite; for liftoff they are file names.
	dir := t.TempDir()
	t.Chdir(dir)
	s, err := Open(context.Background(), "file:liftoff.db")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(filepath.Join(dir, "file:liftoff.db")); err != nil {
		t.Errorf("file not created under its own name: %v", err)
	}
}
