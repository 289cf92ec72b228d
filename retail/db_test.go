package retail

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A file written at schema version 1 opens, migrates to the current
// version, and keeps its data.
func TestMigrateFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := openAt(ctx, path, Options{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := old.UserVersion(ctx); v != 1 {
		t.Fatalf("old file at version %d", v)
	}
	// Version 1 has no customers.language: write as a v1 program did.
	if _, err := old.ExecContext(ctx, `INSERT INTO customers (id, name, email, phone, loyalty_card, since, acquired_via, acquired_by,
		contact_email, contact_sms, contact_push, contact_mail, updated_at)
		VALUES ('cust-1', 'Dana', '', '+15550001', 'LC-1', 1, 'walk_in', '', 1, 0, 0, 0, 1)`); err != nil {
		t.Fatal(err)
	}
	old.Close()

	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, _ := db.UserVersion(ctx); v != SchemaVersion() || v < 2 {
		t.Fatalf("migrated to version %d, want %d", v, SchemaVersion())
	}
	var name, lang string
	if err := db.QueryRowContext(ctx, "SELECT name, language FROM customers WHERE phone = '+15550001'").Scan(&name, &lang); err != nil {
		t.Fatal(err)
	}
	if name != "Dana" || lang != "en" {
		t.Fatalf("after migration: %q %q", name, lang)
	}
	var idx int
	db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'customers_phone'").Scan(&idx)
	if idx != 1 {
		t.Fatal("version 2's index is missing")
	}
	// The migrated file is indistinguishable in schema from a new one.
	fresh := mustOpen(t)
	if a, b := schemaOf(t, db), schemaOf(t, fresh); a != b {
		t.Fatalf("migrated schema differs from a new file's at %s", diffLines(a, b))
	}
	// And Apply works on it.
	r := &region{tb: t, db: db, now: t0}
	r.mustAccept(&UpsertStore{ID: "S1", Kind: KindStore, Name: "x", Region: "west"})
	r.mustAccept(&RecordVisit{ID: "v1", CustomerID: "cust-1", StoreID: "S1", Method: SignInCard})
}

func schemaOf(t *testing.T, db *DB) string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY type, name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var typ, name, text string
		rows.Scan(&typ, &name, &text)
		b.WriteString(typ + " " + name + " " + text + "\n")
	}
	return b.String()
}

// A file from a newer Endcap is refused with a clear error and not touched.
func TestRefuseNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "new.db")
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	future := SchemaVersion() + 1
	if _, err := db.ExecContext(ctx, "PRAGMA user_version = "+itoa(future)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := os.ReadFile(path)

	_, err = Open(ctx, path, Options{})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("error %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "schema version "+itoa(future)) || !strings.Contains(err.Error(), "upgrade Endcap") {
		t.Errorf("error %q does not say what to do", err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Error("the newer file was modified")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// Garbage where a database should be gives an error that says which file,
// never a panic or an empty database written over it.
func TestOpenCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "corrupt.db")
	junk := []byte(strings.Repeat("this is not a database ", 500))
	if err := os.WriteFile(path, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), path, Options{})
	if err == nil {
		t.Fatal("opened garbage")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a database") {
		t.Errorf("error %q does not name the file and the problem", err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(junk) {
		t.Error("the corrupt file was overwritten")
	}
}

func TestPragmas(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		opts Options
		sync int
	}{{Options{}, 2}, {Options{Durability: DurabilityNormal}, 1}} {
		db, err := Open(ctx, filepath.Join(t.TempDir(), "p.db"), tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		var fk, sync int
		db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
		db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk)
		db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync)
		db.Close()
		if mode != "wal" || fk != 1 || sync != tc.sync {
			t.Errorf("%+v: journal_mode %s, foreign_keys %d, synchronous %d (want wal, 1, %d)", tc.opts, mode, fk, sync, tc.sync)
		}
	}
}

func TestHLC(t *testing.T) {
	now := time.UnixMilli(1000)
	c := &Clock{Now: func() time.Time { return now }}
	a, b := c.Tick(), c.Tick()
	if a != (HLC{1000, 0}) || b != (HLC{1000, 1}) {
		t.Fatalf("ticks in one millisecond: %v %v", a, b)
	}
	// A remote clock ahead pulls this one forward.
	got := c.Observe(HLC{5000, 7})
	if got != (HLC{5000, 8}) || c.Tick().Compare(got) <= 0 {
		t.Fatalf("observe ahead: %v", got)
	}
	// The wall clock going backwards does not make time go backwards.
	now = time.UnixMilli(10)
	if x := c.Tick(); x.Compare(HLC{5000, 9}) < 0 {
		t.Fatalf("tick after the wall clock stepped back: %v", x)
	}
	// The physical clock moving ahead resets the counter.
	now = time.UnixMilli(9000)
	if x := c.Tick(); x != (HLC{9000, 0}) {
		t.Fatalf("tick: %v", x)
	}
	for _, h := range []HLC{{0, 0}, {1793613600000, 3}, {1, 65535}} {
		p, err := ParseHLC(h.String())
		if err != nil || p != h {
			t.Errorf("ParseHLC(%q) = %v, %v", h.String(), p, err)
		}
	}
	if a, b := (HLC{5, 9999}).String(), (HLC{5, 10000}).String(); a >= b {
		t.Errorf("%q sorts after %q", a, b)
	}
	if _, err := ParseHLC("12"); err == nil {
		t.Error("ParseHLC accepted 12")
	}
}

func TestPIN(t *testing.T) {
	h, err := HashPIN("2468")
	if err != nil {
		t.Fatal(err)
	}
	if !VerifyPIN(h, "2468") {
		t.Error("the right PIN is refused")
	}
	for _, wrong := range []string{"2469", "", "24680", "2468 "} {
		if VerifyPIN(h, wrong) {
			t.Errorf("wrong PIN %q accepted", wrong)
		}
	}
	h2, _ := HashPIN("2468")
	if h == h2 {
		t.Error("two hashes of one PIN are equal: no salt")
	}
	if _, err := HashPIN("12"); err == nil {
		t.Error("a 2-digit PIN was hashed")
	}
	for _, bad := range []string{"", "2468", "pbkdf2-sha256$1$AAAA$AAAA", "md5$1000$x$y"} {
		if VerifyPIN(bad, "2468") || validPINHash(bad) {
			t.Errorf("hash %q accepted", bad)
		}
	}
}

// A relaxed transaction runs with synchronous=NORMAL, and the connection
// is back at FULL for the next one.
func TestBeginRelaxed(t *testing.T) {
	ctx := context.Background()
	db := mustOpen(t)
	sync := func(tx *Tx) int {
		var v int
		if err := tx.SQL().QueryRowContext(ctx, "PRAGMA synchronous").Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, commit := range []bool{true, false} {
		tx, err := db.BeginRelaxed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v := sync(tx); v != 1 {
			t.Fatalf("relaxed transaction: synchronous=%d, want 1 (NORMAL)", v)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO settings (key, value) VALUES (?, 'x') ON CONFLICT DO NOTHING", "k"); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
		tx, err = db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v := sync(tx); v != 2 {
			t.Fatalf("after a relaxed transaction: synchronous=%d, want 2 (FULL)", v)
		}
		tx.Rollback()
	}
}
