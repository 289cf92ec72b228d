package retail

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// checkList matches a CHECK constraint that lists the allowed values.
var checkList = regexp.MustCompile(`CHECK \((\w+) IN \(([^)]*)\)\)`)

// orChain is what migration 5 makes of a list of three or more values:
// the same constraint as a chain of comparisons. Shorter lists stay.
func orChain(check string) string {
	m := checkList.FindStringSubmatch(check)
	vals := strings.Split(m[2], ", ")
	if len(vals) < 3 {
		return check
	}
	for i, v := range vals {
		vals[i] = m[1] + " = " + v
	}
	return "CHECK (" + strings.Join(vals, " OR ") + ")"
}

// TestMigration5 checks that migration 5 rewrote every CHECK list of three
// or more values, and nothing else, in every table: a file at version 4
// (with rows) and a new file end with the same schema, which is version 4's
// with each such list replaced by its chain of comparisons, and the file
// passes SQLite's integrity and foreign key checks.
func TestMigration5(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v4.db")
	old, err := openAt(ctx, path, Options{}, 4)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{} // table -> its CREATE TABLE at version 5
	rows, err := old.QueryContext(ctx, "SELECT name, sql FROM sqlite_schema WHERE type = 'table'")
	if err != nil {
		t.Fatal(err)
	}
	lists := 0
	for rows.Next() {
		var name, text string
		if err := rows.Scan(&name, &text); err != nil {
			t.Fatal(err)
		}
		want[name] = checkList.ReplaceAllStringFunc(text, func(c string) string {
			if o := orChain(c); o != c {
				lists++
				return o
			}
			return c
		})
	}
	rows.Close()
	if lists < 20 {
		t.Fatalf("only %d CHECK lists of three or more values at version 4", lists)
	}
	// Rows written by version 4 stay, and still satisfy the constraints.
	r := &region{tb: t, db: old, now: t0}
	for _, m := range scenario(t) {
		r.applyMutation(m)
	}
	before := dumpRows(t, old)
	old.Close()

	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for name, text := range want {
		var got string
		if err := db.QueryRowContext(ctx, "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", name).Scan(&got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got != text {
			t.Errorf("%s after migration 5:\n%s\nwant\n%s", name, got, text)
		}
	}
	if a, b := schemaOf(t, db), schemaOf(t, mustOpen(t)); a != b {
		t.Fatalf("migrated schema differs from a new file's at %s", diffLines(a, b))
	}
	if after := dumpRows(t, db); after != before {
		t.Fatalf("rows changed in migration 5 at %s", diffLines(before, after))
	}
	// The writer's connection (perhaps the one that ran the migration) uses
	// the new constraints: inserting an order builds no temporary index.
	err = db.Update(ctx, func(tx *Tx) error {
		rows, err := tx.SQL().QueryContext(ctx, "EXPLAIN "+insertSQL(tOrders, 1, ""), make([]any, len(tOrders.cols))...)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			if op, _ := vals[1].(string); op == "OpenEphemeral" {
				t.Errorf("inserting an order opens a temporary table: %v", vals)
			}
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	var ok string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ok); err != nil || ok != "ok" {
		t.Fatalf("integrity_check: %q %v", ok, err)
	}
	fk, err := db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		t.Fatal(err)
	}
	if fk.Next() {
		t.Fatal("foreign_key_check finds a row")
	}
	fk.Close()
}

// dumpRows is a dump without the schema lines.
func dumpRows(t *testing.T, db *DB) string {
	t.Helper()
	var keep []string
	for _, l := range strings.Split(dump(t, db), "\n") {
		if !strings.HasPrefix(l, "schema ") && !strings.HasPrefix(l, "table ") && !strings.HasPrefix(l, "index ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestCheckListsRefuse shows that the rewritten constraints still refuse
// what they refused, on a new file and on the writer connection Apply uses:
// a value outside the list, for a list that was rewritten (orders.channel,
// applied_mutations.status) and one that was not (stores.kind).
func TestCheckListsRefuse(t *testing.T) {
	r := newRegion(t)
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO orders (id, channel, status, fulfilment, subtotal_cents, discount_cents, total_cents, placed_at, updated_at, mutation_id)
		 VALUES ('bad', 'fax', 'completed', 'carry_out', 0, 0, 0, 1, 1, 'm')`,
		`INSERT INTO applied_mutations (id, type, hlc, actor, status, code, reason) VALUES ('bad', 't', 'h', 'a', 'maybe', '', '')`,
		`INSERT INTO stores (id, kind, name, region, updated_at) VALUES ('bad', 'warehouse', 'x', 'west', 1)`,
	} {
		err := r.db.Update(ctx, func(tx *Tx) error {
			_, err := tx.Exec(ctx, q)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "CHECK constraint failed") {
			t.Errorf("%.40s…: %v, want a CHECK constraint failure", q, err)
		}
	}
	// And allow what they allowed.
	err := r.db.Update(ctx, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO orders (id, channel, status, fulfilment, subtotal_cents, discount_cents, total_cents, placed_at, updated_at, mutation_id)
		 VALUES ('good', 'kiosk', 'cancelled', 'store_pickup', 0, 0, 0, 1, 1, 'm')`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
