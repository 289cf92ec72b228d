package retail

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// Durability chooses SQLite's synchronous setting. See docs/data-model.md.
type Durability int

const (
	// DurabilityFull (the zero value) fsyncs the WAL at every commit: a
	// committed sale survives a power cut. Edges use it.
	DurabilityFull Durability = iota
	// DurabilityNormal fsyncs only at checkpoints: a power cut may lose the
	// last commits but never corrupts. For databases rebuilt from another
	// durable log (the hub's raft state machine).
	DurabilityNormal
)

// Options tune Open. The zero value is ready for use.
type Options struct {
	Durability Durability
	// ReadOnly opens the file without writing or migrating it.
	ReadOnly bool
}

// DB is an open region database: a *sql.DB on one SQLite file in WAL mode
// with foreign keys on, migrated to the current schema, plus a cache of
// prepared statements for Apply. It is safe for concurrent use.
type DB struct {
	*sql.DB
	path  string
	stmts sync.Map // query string -> *sql.Stmt
}

// Path is the file the database lives in.
func (db *DB) Path() string { return db.path }

// Open opens (creating if need be) the SQLite file at path and migrates it
// to the current schema version. A file written by a newer version fails
// with ErrSchemaTooNew and is left untouched.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	return openAt(ctx, path, opts, len(migrations()))
}

func dsn(path string, opts Options) string {
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "busy_timeout(10000)")
	if !opts.ReadOnly {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	switch opts.Durability {
	case DurabilityNormal:
		q.Add("_pragma", "synchronous(NORMAL)")
	default:
		q.Add("_pragma", "synchronous(FULL)")
	}
	// Write transactions take the write lock at BEGIN, so two writers never
	// deadlock upgrading a read lock.
	q.Set("_txlock", "immediate")
	if opts.ReadOnly {
		q.Set("mode", "ro")
	}
	// The path is part of a URI: escape what SQLite would read as URI syntax.
	return "file:" + uriPath.Replace(path) + "?" + q.Encode()
}

var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func openAt(ctx context.Context, path string, opts Options, version int) (*DB, error) {
	sqldb, err := sql.Open("sqlite", dsn(path, opts))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := &DB{DB: sqldb, path: path}
	if err := db.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.migrate(ctx, version, opts.ReadOnly); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// Close closes the cached statements and the database.
func (db *DB) Close() error {
	db.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	return db.DB.Close()
}

type migration struct {
	version int
	name    string
	sql     string
}

// migrations lists the embedded migrations in version order. File names
// are NNNN_name.sql; versions start at 1 and have no gaps.
func migrations() []migration {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		panic(err) // embedded at build time; cannot fail
	}
	var ms []migration
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			panic(fmt.Sprintf("migration %s: name must start with its version", e.Name()))
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			panic(fmt.Sprintf("migration %s: want version %d", m.name, i+1))
		}
	}
	return ms
}

// SchemaVersion is the schema version this program writes.
func SchemaVersion() int { return len(migrations()) }

// UserVersion reads the schema version stored in the file.
func (db *DB) UserVersion(ctx context.Context) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

func (db *DB) migrate(ctx context.Context, target int, readOnly bool) error {
	have, err := db.UserVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if have > SchemaVersion() {
		return fmt.Errorf("%w: file has schema version %d, this program knows up to %d; upgrade Endcap",
			ErrSchemaTooNew, have, SchemaVersion())
	}
	if have >= target || readOnly {
		return nil
	}
	for _, m := range migrations()[have:target] {
		if err := db.applyMigration(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) applyMigration(ctx context.Context, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: %w", m.name, err)
	}
	return nil
}

// stmt returns a prepared statement for query, preparing it once per DB.
func (db *DB) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := db.stmts.Load(query); ok {
		return s.(*sql.Stmt), nil
	}
	s, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	if prev, loaded := db.stmts.LoadOrStore(query, s); loaded {
		s.Close()
		return prev.(*sql.Stmt), nil
	}
	return s, nil
}

// Tx is a write transaction on a DB: Apply runs inside one. It is not safe
// for concurrent use.
type Tx struct {
	db *DB
	tx *sql.Tx
}

// Begin starts a write transaction.
func (db *DB) Begin(ctx context.Context) (*Tx, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &Tx{db: db, tx: tx}, nil
}

// Commit commits the transaction.
func (t *Tx) Commit() error { return t.tx.Commit() }

// Rollback abandons the transaction; after Commit it is a no-op.
func (t *Tx) Rollback() error { return t.tx.Rollback() }

// SQL is the underlying transaction, for callers that add their own
// statements (the hub's change log, the edge's outbox) to the same commit.
func (t *Tx) SQL() *sql.Tx { return t.tx }

// Update runs fn in a write transaction and commits it if fn returns nil.
func (db *DB) Update(ctx context.Context, fn func(*Tx) error) error {
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (t *Tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := t.db.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return t.tx.StmtContext(ctx, s).ExecContext(ctx, args...)
}

func (t *Tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := t.db.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return t.tx.StmtContext(ctx, s).QueryContext(ctx, args...)
}

func (t *Tx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := t.db.stmt(ctx, query)
	if err != nil {
		// sql.Row carries no constructor for an error; run it unprepared so
		// the caller's Scan reports the same preparation error.
		return t.tx.QueryRowContext(ctx, query, args...)
	}
	return t.tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
}
