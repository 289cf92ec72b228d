package retail

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

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

// Checkpointing chooses who copies the WAL back into the database file
// (a checkpoint), and when. See docs/benchmarks.md, "Edge operations".
type Checkpointing int

const (
	// CheckpointDefault (the zero value) is CheckpointBackground for a
	// writable database opened with DurabilityFull (a store's replica,
	// where a clerk waits for each commit) and CheckpointInline otherwise.
	CheckpointDefault Checkpointing = iota
	// CheckpointInline leaves it to SQLite: the commit that takes the WAL
	// past 1,000 pages runs the checkpoint before it returns, copying
	// those pages and syncing the database file while its caller waits.
	CheckpointInline
	// CheckpointBackground takes checkpoints off the commit path: the
	// writer's connection does not checkpoint (wal_autocheckpoint=0), and
	// a goroutine of the DB, on a connection of its own, runs a PASSIVE
	// checkpoint CheckpointInterval after a write transaction (Begin,
	// Update and their relaxed forms) commits. It copies what it can
	// without taking the write lock, so commits go on while it runs.
	// Statements run on the pool (DB.ExecContext) keep SQLite's automatic
	// checkpoint and do not wake the goroutine. If commits come so close together that the WAL is
	// never wholly copied, SQLite cannot start it again from its
	// beginning, and it grows: past CheckpointLimit pages the goroutine
	// holds the writers off while it copies the rest (see
	// checkpointer.checkpoint). Close stops the goroutine.
	CheckpointBackground
)

// Defaults of the background checkpointer's settings.
const (
	defaultCheckpointInterval = 200 * time.Millisecond
	defaultCheckpointLimit    = 10_000 // pages: 40 MiB at SQLite's default page size
)

// Options tune Open. The zero value is ready for use.
type Options struct {
	Durability Durability
	// ReadOnly opens the file without writing or migrating it.
	ReadOnly bool
	// Checkpoint chooses who checkpoints the WAL; the zero value is
	// CheckpointDefault.
	Checkpoint Checkpointing
	// CheckpointInterval is how long after a commit the background
	// checkpointer runs, so the commits of that time share one checkpoint
	// (one sync of the database file). Zero means 200 ms.
	CheckpointInterval time.Duration
	// CheckpointLimit is the WAL size, in pages, at which the background
	// checkpointer holds the writers off to copy all of it, so that it
	// starts again from its beginning, or, if no commit came during the
	// interval, empties the file. Zero means 10,000 (40 MiB at 4 KiB a
	// page).
	CheckpointLimit int
}

// background reports whether opts ask for the background checkpointer.
func (opts Options) background() bool {
	switch opts.Checkpoint {
	case CheckpointBackground:
		return !opts.ReadOnly
	case CheckpointDefault:
		return !opts.ReadOnly && opts.Durability == DurabilityFull
	}
	return false
}

// DB is an open region database: a *sql.DB on one SQLite file in WAL mode
// with foreign keys on, migrated to the current schema, plus the
// connection write transactions run on, with the statements Apply runs
// prepared on it (see writer). It is safe for concurrent use. It keeps one
// connection of the pool for writing: do not limit the pool
// (SetMaxOpenConns) below two.
type DB struct {
	*sql.DB
	path       string
	durability Durability
	w          writer
	ckpt       *checkpointer // nil: SQLite checkpoints inside commits
}

// Path is the file the database lives in.
func (db *DB) Path() string { return db.path }

// Open opens (creating if need be) the SQLite file at path and migrates it
// to the current schema version. A file written by a newer version fails
// with ErrSchemaTooNew and is left untouched.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	return openAt(ctx, path, opts, len(migrations()))
}

func dsn(path string, opts Options, busy time.Duration) string {
	q := url.Values{}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
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
	sqldb, err := sql.Open("sqlite", dsn(path, opts, busyTimeout))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db := &DB{DB: sqldb, path: path, durability: opts.Durability, w: writer{tok: make(chan struct{}, 1)}}
	if err := db.PingContext(ctx); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.migrate(ctx, version, opts.ReadOnly); err != nil {
		sqldb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if opts.background() {
		if db.ckpt, err = startCheckpointer(path, opts, &db.w); err != nil {
			sqldb.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		db.w.pragmas = writerPragmas + "; PRAGMA wal_autocheckpoint = 0"
		db.w.ckpt = db.ckpt
	}
	return db, nil
}

// Close stops the background checkpointer, waiting for a checkpoint in
// progress to stop, and closes the writer's statements and connection and
// the database. A write transaction still open keeps its connection until
// it ends.
func (db *DB) Close() error {
	if db.ckpt != nil {
		db.ckpt.close()
	}
	db.w.mu.Lock()
	db.w.closed = true
	select {
	case db.w.tok <- struct{}{}:
		db.w.close()
		<-db.w.tok
	default: // a Tx is open: its end closes the connection
	}
	db.w.mu.Unlock()
	return db.DB.Close()
}

// checkpointer is the background checkpointer of a DB opened with
// CheckpointBackground: a goroutine and a connection of its own.
type checkpointer struct {
	db       *sql.DB // one connection to the file, for checkpoints only
	w        *writer // the DB's: checkpoints that hold off writers take its token
	interval time.Duration
	limit    int
	kick     chan struct{} // holds a token when a commit came since the last checkpoint
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{} // closed when run returns

	mu    sync.Mutex
	stats checkpointStats
}

// checkpointStats count what the checkpointer did, for tests and
// diagnostics.
type checkpointStats struct {
	passive      int   // PASSIVE checkpoints beside the writers
	held         int   // PASSIVE checkpoints holding the writers off
	truncate     int   // TRUNCATE checkpoints that emptied the WAL
	truncateBusy int   // TRUNCATE checkpoints that found a reader and gave up
	log, copied  int   // the last one's WAL pages, and how many of them are in the database file
	err          error // the last failure; the next commit's checkpoint tries again
}

// checkpointBusy is how long the checkpointer's connection waits for a
// lock. Only a TRUNCATE checkpoint waits: for readers of older snapshots
// to finish, before it gives up (having copied what it could) until the
// next commit's turn.
const checkpointBusy = 50 * time.Millisecond

func startCheckpointer(path string, opts Options, w *writer) (*checkpointer, error) {
	sqldb, err := sql.Open("sqlite", dsn(path, Options{Durability: opts.Durability}, checkpointBusy))
	if err != nil {
		return nil, err
	}
	sqldb.SetMaxOpenConns(1)
	c := &checkpointer{
		db:       sqldb,
		w:        w,
		interval: cmp.Or(opts.CheckpointInterval, defaultCheckpointInterval),
		limit:    cmp.Or(opts.CheckpointLimit, defaultCheckpointLimit),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.run()
	return c, nil
}

// committed tells the checkpointer a write transaction committed. It
// never blocks.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// run waits for a commit, then for the interval, and checkpoints, until
// close.
func (c *checkpointer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.kick:
		}
		timer := time.NewTimer(c.interval)
		select {
		case <-c.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		c.checkpoint()
	}
}

// checkpoint copies the WAL into the database file beside the writers.
// Once the WAL is wholly copied, the next write transaction starts it
// again from its beginning (SQLite does, when no reader still reads the
// frames), overwriting the file rather than growing it.
//
// When commits come so close together that a checkpoint never finds the
// WAL wholly copied (the benchmark's sales, back to back, write about
// 14,000 pages a second), the WAL grows. At CheckpointLimit pages the
// checkpointer holds the writers off for a second PASSIVE checkpoint,
// which copies what came during the first (little), so that the next
// write starts the WAL again. (A PASSIVE checkpoint's answer cannot tell
// whether commits came while it ran: it reports the WAL's size as it
// was when it began.) It holds them off by taking the writer's
// token: this DB's transactions wait for it on a channel, not in SQLite's
// busy handler, which sleeps 1, 2, 5, 10 ms... between tries.
//
// If no commit came during the interval, the writers are idle: then,
// instead, a TRUNCATE checkpoint empties the file, giving back the disk a
// burst of writes (a bootstrap, a long change feed) took. Not while
// commits keep coming: a file grown again from empty makes each commit's
// sync also write the file's new size (about 0.5 ms instead of 0.35 ms a
// commit in the sale benchmark), and truncating a large file took 27 ms.
func (c *checkpointer) checkpoint() {
	idle := true
	select {
	case <-c.kick: // commits came since this checkpoint's turn began
		idle = false
	default:
	}
	// log is the WAL's size when the checkpoint began: had SQLite
	// started the WAL again since the limit's worth of pages ago, it would
	// be smaller.
	log, _, err := c.exec("PASSIVE", false)
	switch {
	case err != nil || log < c.limit:
	case idle:
		_, _, err = c.exec("TRUNCATE", true)
	default:
		_, _, err = c.exec("PASSIVE", true)
	}
	if err != nil && c.ctx.Err() == nil {
		c.mu.Lock()
		c.stats.err = err
		c.mu.Unlock()
	}
}

// exec runs one checkpoint, holding the writer's token if hold, and
// returns the WAL's size in pages and how many of them are copied.
func (c *checkpointer) exec(mode string, hold bool) (log, copied int, err error) {
	if hold {
		select {
		case c.w.tok <- struct{}{}:
		case <-c.ctx.Done():
			return 0, 0, c.ctx.Err()
		}
		defer func() { <-c.w.tok }()
	}
	var busy int
	err = c.db.QueryRowContext(c.ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &log, &copied)
	if err != nil {
		return 0, 0, fmt.Errorf("wal_checkpoint(%s): %w", mode, err)
	}
	c.mu.Lock()
	switch {
	case mode == "TRUNCATE" && busy != 0:
		c.stats.truncateBusy++
	case mode == "TRUNCATE":
		c.stats.truncate++
	case hold:
		c.stats.held++
	default:
		c.stats.passive++
	}
	c.stats.log, c.stats.copied = log, copied
	c.mu.Unlock()
	return log, copied, nil
}

// close stops the goroutine, interrupting a checkpoint in progress, and
// closes the connection.
func (c *checkpointer) close() {
	c.cancel()
	<-c.done
	c.db.Close()
}

func (c *checkpointer) snapshot() checkpointStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
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

// writer is where write transactions run. SQLite lets one connection
// write at a time, so a DB keeps one connection for writing, taken from the
// pool at the first Begin and held until Close, with the statements Apply
// runs prepared on it once.
//
// This is for speed (docs/benchmarks.md): through a *sql.Tx, every
// statement is first re-bound to the transaction (Tx.StmtContext) and
// every query starts a goroutine to watch the transaction's context, which
// together cost more than SQLite's own work for Apply's point reads and
// writes. Statements prepared on the writer's *sql.Conn run without either.
// Apply's own statements (put, exists, update, the savepoint) go one step
// further, to the driver's statements through Conn.Raw, skipping
// database/sql's per-call argument checks and Rows bookkeeping.
//
// tok holds one token; a Tx owns it from Begin to Commit or Rollback, and
// with it conn and the statement caches. Begin waits for it as long as
// SQLite would wait for the write lock (busyTimeout).
type writer struct {
	tok     chan struct{}
	pragmas string        // run on conn when it opens; writerPragmas if empty
	ckpt    *checkpointer // told of each commit; nil without one
	conn    *sql.Conn
	stmts   map[string]*sql.Stmt // query -> statement prepared on conn
	raw     map[string]*rawStmt  // query -> driver statement on conn's driver connection
	args    []driver.NamedValue  // reused for each rawStmt call
	dest    []driver.Value       // reused for each rawStmt row

	mu     sync.Mutex // guards closed, and the token's return
	closed bool       // DB.Close ran: no more transactions
}

// rawStmt is a statement prepared on the driver connection under conn.
type rawStmt struct {
	s    driver.Stmt
	exec driver.StmtExecContext
	qry  driver.StmtQueryContext
}

// busyTimeout is how long a writer waits for another: SQLite's busy_timeout
// (in dsn) for other processes, Begin for this DB's own transactions.
const busyTimeout = 10 * time.Second

// errWriterBusy is Begin's answer when another transaction of this DB
// holds the write lock for longer than busyTimeout.
var errWriterBusy = fmt.Errorf("database is locked: another write transaction has been open for %v", busyTimeout)

// acquire takes the writer token and makes sure the connection is open.
func (w *writer) acquire(ctx context.Context, db *sql.DB) error {
	select {
	case w.tok <- struct{}{}:
	default:
		timer := time.NewTimer(busyTimeout)
		defer timer.Stop()
		select {
		case w.tok <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return errWriterBusy
		}
	}
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		<-w.tok
		return sql.ErrConnDone
	}
	if w.conn == nil {
		if err := w.open(ctx, db); err != nil {
			<-w.tok
			return err
		}
	}
	return nil
}

// open takes the writer's connection from the pool; the caller holds the
// token.
func (w *writer) open(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	pragmas := w.pragmas
	if pragmas == "" {
		pragmas = writerPragmas
	}
	if _, err := conn.ExecContext(ctx, pragmas); err != nil {
		conn.Close()
		return err
	}
	w.conn, w.stmts, w.raw = conn, map[string]*sql.Stmt{}, map[string]*rawStmt{}
	return nil
}

// writerPragmas tune the writer's connection (and only it: the pool's
// readers keep SQLite's defaults).
//
// temp_store = MEMORY keeps the sub-journal in memory. Apply opens a
// savepoint per mutation, and SQLite a statement journal for each
// statement that may abort (a foreign key, an upsert), and copies every
// page a savepoint or statement first writes into the sub-journal so it
// can roll back. By default the sub-journal spills to a temp file past
// 64 KiB, costing a write syscall per page; in memory, a 1,000-sale
// transaction runs about a fifth faster (docs/benchmarks.md). The cost is
// memory for the pages one mutation or statement writes, and for the temp
// tables of queries run on the writer (Tx.SQL()'s callers' sorts).
const writerPragmas = "PRAGMA temp_store = MEMORY"

// release gives the token back. A transaction that did not end cleanly
// (its COMMIT or ROLLBACK failed) may leave SQLite inside it; ROLLBACK
// makes sure the next Begin finds the connection idle.
func (w *writer) release(clean bool) {
	if !clean && w.conn != nil {
		w.conn.ExecContext(context.Background(), "ROLLBACK")
	}
	w.mu.Lock()
	if w.closed {
		w.close()
	}
	<-w.tok
	w.mu.Unlock()
}

// close closes the statements and the connection; the caller holds the token.
func (w *writer) close() {
	for _, s := range w.stmts {
		s.Close()
	}
	if w.conn != nil {
		w.conn.Raw(func(any) error {
			for _, s := range w.raw {
				s.s.Close()
			}
			return nil
		})
		w.conn.Close()
	}
	w.conn, w.stmts, w.raw = nil, nil, nil
}

// stmt returns the statement for query prepared on the writer's
// connection, preparing it the first time; the caller holds the token.
func (w *writer) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s := w.stmts[query]; s != nil {
		return s, nil
	}
	s, err := w.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	w.stmts[query] = s
	return s, nil
}

// rawStmt returns the driver statement for query on the driver connection
// dc (inside Conn.Raw), preparing it the first time.
func (w *writer) rawStmt(ctx context.Context, dc any, query string) (*rawStmt, error) {
	if s := w.raw[query]; s != nil {
		return s, nil
	}
	var ds driver.Stmt
	var err error
	if p, ok := dc.(driver.ConnPrepareContext); ok {
		ds, err = p.PrepareContext(ctx, query)
	} else {
		ds, err = dc.(driver.Conn).Prepare(query)
	}
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	s := &rawStmt{s: ds}
	s.exec, _ = ds.(driver.StmtExecContext)
	s.qry, _ = ds.(driver.StmtQueryContext)
	if s.exec == nil || s.qry == nil {
		ds.Close()
		return nil, fmt.Errorf("prepare %q: driver statement without contexts", query)
	}
	w.raw[query] = s
	return s, nil
}

// driverArgs converts args to driver values the way database/sql does for
// a driver without its own converter (driver.DefaultParameterConverter)
// for the kinds Apply passes; ok is false for anything else (a Valuer, a
// sql.NamedArg, a pointer), which the caller then leaves to database/sql.
func (w *writer) driverArgs(args []any) (nv []driver.NamedValue, ok bool) {
	nv = w.args[:0]
	for i, a := range args {
		var v driver.Value
		switch x := a.(type) {
		case nil, int64, string, []byte, bool, float64:
			v = x
		case int:
			v = int64(x)
		case driver.Valuer:
			return nil, false
		default:
			rv := reflect.ValueOf(a)
			switch rv.Kind() {
			case reflect.String:
				v = rv.String() // the enumeration types
			case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
				v = rv.Int()
			default:
				return nil, false
			}
		}
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	w.args = nv
	return nv, true
}

// Tx is a write transaction on a DB: Apply runs inside one. It is not safe
// for concurrent use. A DB has one write transaction open at a time: Begin
// waits for the previous one to commit or roll back.
type Tx struct {
	db *DB
	tx *sql.Tx
	// ctx is Begin's context. When it ends, statements fail with its
	// error and Commit rolls back; the caller's Rollback (or Commit) ends
	// the transaction, which database/sql is not left to do behind its back.
	ctx context.Context
	// bg carries ctx's values without its cancellation to the statements:
	// with a cancellable context, database/sql and the driver each start a
	// goroutine per statement to watch it. Each statement checks ctx
	// before it runs instead; Apply's statements are point reads and
	// writes that take microseconds.
	bg   context.Context
	done bool
	// relaxed: the connection runs synchronous=NORMAL for this
	// transaction; FULL is set back when it ends.
	relaxed bool
}

// Begin starts a write transaction.
func (db *DB) Begin(ctx context.Context) (*Tx, error) {
	return db.begin(ctx, false)
}

// BeginRelaxed starts a write transaction whose commit does not wait for
// an fsync (synchronous=NORMAL for this one commit), on a database opened
// with DurabilityFull. For writes that can be redone after a power cut
// (an edge applying the hub's change feed, which it fetches again from
// the sequence it last recorded): a later ordinary commit fsyncs the WAL,
// these frames included, so a local sale committed after it is as durable
// as ever. On a DurabilityNormal database it is Begin.
func (db *DB) BeginRelaxed(ctx context.Context) (*Tx, error) {
	return db.begin(ctx, db.durability == DurabilityFull)
}

// UpdateRelaxed is Update in a BeginRelaxed transaction.
func (db *DB) UpdateRelaxed(ctx context.Context, fn func(*Tx) error) error {
	return db.update(ctx, db.BeginRelaxed, fn)
}

func (db *DB) begin(ctx context.Context, relaxed bool) (*Tx, error) {
	if err := db.w.acquire(ctx, db.DB); err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	if relaxed {
		if _, err := db.w.conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = NORMAL"); err != nil {
			db.w.release(true)
			return nil, fmt.Errorf("begin: %w", err)
		}
	}
	bg := context.WithoutCancel(ctx)
	tx, err := db.w.conn.BeginTx(bg, nil)
	if errors.Is(err, sql.ErrConnDone) {
		// database/sql closed the connection (the driver called it bad):
		// take another.
		db.w.close()
		if err = db.w.open(ctx, db.DB); err == nil {
			tx, err = db.w.conn.BeginTx(bg, nil)
		}
	}
	if err != nil {
		db.w.release(true)
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &Tx{db: db, tx: tx, ctx: ctx, bg: bg, relaxed: relaxed}, nil
}

// Commit commits the transaction. If Begin's context has ended it rolls
// back instead and returns the context's error.
func (t *Tx) Commit() error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	if err := t.ctx.Err(); err != nil {
		ok := t.tx.Rollback() == nil
		t.restore()
		t.db.w.release(ok)
		return err
	}
	err := t.tx.Commit()
	t.restore()
	t.db.w.release(err == nil)
	if err == nil && t.db.w.ckpt != nil {
		t.db.w.ckpt.committed()
	}
	return err
}

// restore sets the connection back to FULL after a relaxed transaction.
func (t *Tx) restore() {
	if t.relaxed {
		t.db.w.conn.ExecContext(t.bg, "PRAGMA synchronous = FULL")
	}
}

// Rollback abandons the transaction; after Commit it is a no-op.
func (t *Tx) Rollback() error {
	if t.done {
		return sql.ErrTxDone
	}
	t.done = true
	err := t.tx.Rollback()
	t.restore()
	t.db.w.release(err == nil)
	return err
}

// Exec runs a statement in the transaction, prepared once on the writer
// connection and reused: for callers that add their own writes to the same
// commit often (the hub's change log), where SQL().ExecContext would
// prepare the statement again on every call.
func (t *Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.exec(ctx, query, args...)
}

// SQL is the underlying transaction, for callers that add their own
// statements (the hub's change log, the edge's outbox) to the same commit.
func (t *Tx) SQL() *sql.Tx { return t.tx }

// Update runs fn in a write transaction and commits it if fn returns nil.
func (db *DB) Update(ctx context.Context, fn func(*Tx) error) error {
	return db.update(ctx, db.Begin, fn)
}

func (db *DB) update(ctx context.Context, begin func(context.Context) (*Tx, error), fn func(*Tx) error) error {
	tx, err := begin(ctx)
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

// live reports why a statement cannot run now: the transaction ended,
// or the statement's or the transaction's context did.
func (t *Tx) live(ctx context.Context) error {
	if t.done {
		return sql.ErrTxDone
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.ctx.Err()
}

func (t *Tx) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if err := t.live(ctx); err != nil {
		return nil, err
	}
	return t.db.w.stmt(t.bg, query)
}

// exec runs a statement for its effect. The driver's Result is what
// database/sql would wrap: it holds the counts, taken when the statement ran.
func (t *Tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if err := t.live(ctx); err != nil {
		return nil, err
	}
	w := &t.db.w
	nv, ok := w.driverArgs(args)
	if !ok {
		s, err := w.stmt(t.bg, query)
		if err != nil {
			return nil, err
		}
		return s.ExecContext(t.bg, args...)
	}
	var res driver.Result
	err := w.conn.Raw(func(dc any) error {
		s, err := w.rawStmt(t.bg, dc, query)
		if err != nil {
			return err
		}
		res, err = s.exec.ExecContext(t.bg, nv)
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// rawQuery runs query and calls row with each row's values, which are
// only valid during the call; row must not run statements. It reports
// handled false, having done nothing, for arguments it leaves to
// database/sql.
func (t *Tx) rawQuery(ctx context.Context, row func([]driver.Value) error, query string, args ...any) (handled bool, err error) {
	if err := t.live(ctx); err != nil {
		return true, err
	}
	w := &t.db.w
	nv, ok := w.driverArgs(args)
	if !ok {
		return false, nil
	}
	return true, w.conn.Raw(func(dc any) error {
		s, err := w.rawStmt(t.bg, dc, query)
		if err != nil {
			return err
		}
		rows, err := s.qry.QueryContext(t.bg, nv)
		if err != nil {
			return err
		}
		dest := w.dest[:0]
		for range rows.Columns() {
			dest = append(dest, nil)
		}
		w.dest = dest
		for {
			if err = rows.Next(dest); err != nil {
				break
			}
			if err = row(dest); err != nil {
				break
			}
		}
		if err == io.EOF {
			err = nil
		}
		if cerr := rows.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

func (t *Tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := t.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(t.bg, args...)
}

func (t *Tx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := t.prepared(ctx, query)
	if err != nil {
		// sql.Row has no constructor for an error: have database/sql make
		// the same error, from the ended context, the ended transaction,
		// or the failed preparation.
		if ctx.Err() == nil {
			ctx = t.ctx
		}
		if ctx.Err() == nil {
			ctx = t.bg
		}
		return t.tx.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(t.bg, args...)
}
