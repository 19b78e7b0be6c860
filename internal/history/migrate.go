package history

import (
	"context"
	"fmt"
	"strings"
)

// applicationID marks a SQLite file as a liftoff history ("LFTF"), so that
// Open can refuse another application's database instead of adding tables
// to it.
const applicationID = 0x4c465446

// migrations returns the schema changes in order; the file's user_version
// is how many have been applied. Append only: never edit a migration that
// has shipped, since files out there already ran it.
func migrations() []string {
	return []string{
		// 1: deliveries and deploys.
		//
		// Times are unix nanoseconds, UTC: exact round trips and cheap
		// ordering. Strings the engine may not know yet are '' rather
		// than NULL; the one meaningful NULL is deploys.outcome, which
		// marks a deploy begun and not finished, and which reconcile looks
		// for at start-up. deploys.delivery has no foreign key on purpose:
		// deliveries are recorded after the answer, and a deploy that no
		// webhook asked for has no delivery.
		fmt.Sprintf(`PRAGMA application_id = %d;`, applicationID) + `
CREATE TABLE deliveries (
	id          TEXT PRIMARY KEY,
	source      TEXT NOT NULL,
	image       TEXT NOT NULL,
	tag         TEXT NOT NULL,
	pusher      TEXT NOT NULL,
	received_at INTEGER NOT NULL,
	accepted    TEXT NOT NULL -- JSON array of deployment names
) STRICT;
CREATE INDEX deliveries_newest ON deliveries (received_at DESC);

CREATE TABLE deploys (
	id              INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, even after pruning
	deployment      TEXT NOT NULL,
	environment     TEXT NOT NULL,
	image           TEXT NOT NULL,
	tag             TEXT NOT NULL,
	digest          TEXT NOT NULL,
	previous_digest TEXT NOT NULL,
	"trigger"       TEXT NOT NULL,
	delivery        TEXT NOT NULL,
	pusher          TEXT NOT NULL,
	step            TEXT NOT NULL,
	prev_container  TEXT NOT NULL,
	new_container   TEXT NOT NULL,
	outcome         TEXT,          -- NULL while unfinished
	error           TEXT NOT NULL,
	started_at      INTEGER NOT NULL,
	ended_at        INTEGER,       -- NULL while unfinished
	phases          TEXT           -- JSON object: phase -> nanoseconds
) STRICT;
CREATE INDEX deploys_by_deployment ON deploys (deployment, id DESC);
CREATE INDEX deploys_unfinished ON deploys (id) WHERE outcome IS NULL;
`,
		// 2: accepted requests, the promise behind every 202; actors;
		// paused deployments; what each delivery ignored.
		//
		// A request is recorded before its sender is answered and stays
		// open (outcome NULL) until a deploy of it reaches an outcome or
		// it is settled otherwise (superseded, expired, rejected, not
		// retried); state says where an open one waits: queued (the
		// engine deploys it, after a restart too), held (its deployment
		// is paused) or pending (awaiting approval until expires_at).
		// deploys.request links a deploy to the request it serves (0:
		// none), so that the deploys a request began can be counted.
		// actor is the API token's name that asked or approved ('' for
		// a push nobody approved).
		`
CREATE TABLE requests (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	deployment  TEXT NOT NULL,
	image       TEXT NOT NULL,
	tag         TEXT NOT NULL,
	digest      TEXT NOT NULL,
	"trigger"   TEXT NOT NULL,
	delivery    TEXT NOT NULL,
	pusher      TEXT NOT NULL,
	actor       TEXT NOT NULL DEFAULT '',
	received_at INTEGER NOT NULL,
	state       TEXT NOT NULL DEFAULT 'queued',
	expires_at  INTEGER,       -- pending: when the approval times out
	outcome     TEXT,          -- NULL while open
	reason      TEXT NOT NULL DEFAULT '',
	settled_at  INTEGER        -- NULL while open
) STRICT;
CREATE INDEX requests_open ON requests (id) WHERE outcome IS NULL;
ALTER TABLE deploys ADD COLUMN request INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deploys ADD COLUMN actor TEXT NOT NULL DEFAULT '';
CREATE INDEX deploys_by_request ON deploys (request) WHERE request != 0;
CREATE INDEX deploys_by_delivery ON deploys (delivery);

CREATE TABLE paused (
	deployment TEXT PRIMARY KEY,
	actor      TEXT NOT NULL,
	since      INTEGER NOT NULL
) STRICT;

ALTER TABLE deliveries ADD COLUMN actor TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN ignored TEXT NOT NULL DEFAULT '[]'; -- JSON [{deployment|tag, reason}]
`,
		// 3: the end of a deploy's release command's output (64 KiB at
		// most, secrets redacted).
		`ALTER TABLE deploys ADD COLUMN release_output TEXT NOT NULL DEFAULT '';
CREATE INDEX deploys_succeeded ON deploys (deployment, digest) WHERE outcome IN ('succeeded', 'unchanged');`,
		// 4: a push cooling down (min_image_age) until when; the digest
		// a webhook's sender reported, kept with its request and shown
		// with a deploy whose tag resolved to another.
		`ALTER TABLE requests ADD COLUMN until_at INTEGER;
ALTER TABLE requests ADD COLUMN reported TEXT NOT NULL DEFAULT '';
ALTER TABLE deploys ADD COLUMN reported_digest TEXT NOT NULL DEFAULT '';`,
		// 5: the revision labels of a deploy's image (JSON, by label),
		// and the deploy whose image of the same revision vouched for it
		// (promote_from with match: revision).
		`ALTER TABLE deploys ADD COLUMN revisions TEXT NOT NULL DEFAULT '{}';
ALTER TABLE deploys ADD COLUMN vouched_by INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deploys ADD COLUMN vouched_revision TEXT NOT NULL DEFAULT '';`,
		// 6: the end of a deploy's backup command's output (64 KiB at
		// most, secrets redacted), kept for logs:<env> alone.
		`ALTER TABLE deploys ADD COLUMN backup_output TEXT NOT NULL DEFAULT '';`,
	}
}

// migrate brings the file to the newest schema, one migration per
// transaction, so a crash in the middle leaves the file at the last version
// that completed, never between two.
func (s *Store) migrate(ctx context.Context) error {
	ms := migrations()
	// WAL lets readers (another process, a backup) run beside the journal's
	// writes. Set here, after check, because it is a write to the file.
	var mode string
	if err := s.w.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("history %s: set WAL mode: %w", s.path, err)
	}
	if mode != "wal" && !(s.path == memory && mode == "memory") {
		return fmt.Errorf("history %s: journal mode is %q, want wal", s.path, mode)
	}
	for i, m := range ms {
		version := i + 1
		if err := s.apply(ctx, version, m); err != nil {
			return fmt.Errorf("history %s: migrate to schema version %d: %w", s.path, version, err)
		}
	}
	return nil
}

func (s *Store) apply(ctx context.Context, version int, stmts string) error {
	// The writer's transactions are BEGIN IMMEDIATE: the version read below
	// is under the write lock, so two processes opening a new file at once
	// cannot both apply the same migration.
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var have int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&have); err != nil {
		return err
	}
	if have >= version {
		return nil
	}
	if have != version-1 {
		return fmt.Errorf("file is at version %d", have)
	}
	if _, err := tx.ExecContext(ctx, strings.TrimSpace(stmts)); err != nil {
		return err
	}
	// user_version is in the file header, written by this transaction.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version)); err != nil {
		return err
	}
	return tx.Commit()
}
