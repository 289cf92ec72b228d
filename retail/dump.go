package retail

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Querier is what Dump reads through: a *sql.DB, *sql.Conn or *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Dump writes a canonical text form of the database to w: the schema
// version, every schema object, then every row of every table, tables by
// name and rows by primary key. Two databases with the same contents give
// the same bytes, whatever order the rows were written in; nodes compare
// dumps (or their Checksum) to prove they converged.
func Dump(ctx context.Context, q Querier, w io.Writer) error {
	bw := bufio.NewWriter(w)
	var version int
	if err := queryRowInto(ctx, q, "PRAGMA user_version", &version); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	fmt.Fprintf(bw, "schema %d\n", version)
	rows, err := q.QueryContext(ctx, "SELECT type, name, coalesce(sql, '') FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name")
	if err != nil {
		return fmt.Errorf("dump schema: %w", err)
	}
	var tables []string
	for rows.Next() {
		var typ, name, text string
		if err := rows.Scan(&typ, &name, &text); err != nil {
			rows.Close()
			return fmt.Errorf("dump schema: %w", err)
		}
		fmt.Fprintf(bw, "%s %s %s\n", typ, name, strconv.Quote(text))
		if typ == "table" {
			tables = append(tables, name)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("dump schema: %w", err)
	}
	for _, t := range tables {
		if err := dumpTable(ctx, q, bw, t); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func queryRowInto(ctx context.Context, q Querier, query string, dest ...any) error {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	return rows.Scan(dest...)
}

func dumpTable(ctx context.Context, q Querier, w io.Writer, table string) error {
	order := "rowid"
	if t := tableDefs[table]; t != nil {
		order = strings.Join(t.pk, ", ")
	}
	rows, err := q.QueryContext(ctx, fmt.Sprintf("SELECT * FROM %q ORDER BY %s", table, order))
	if err != nil {
		return fmt.Errorf("dump %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return fmt.Errorf("dump %s: %w", table, err)
	}
	fmt.Fprintf(w, "table %s (%s)\n", table, strings.Join(cols, ", "))
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var sb strings.Builder
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("dump %s: %w", table, err)
		}
		sb.Reset()
		for i, v := range vals {
			if i > 0 {
				sb.WriteByte('|')
			}
			sb.WriteString(formatValue(v))
		}
		sb.WriteByte('\n')
		if _, err := io.WriteString(w, sb.String()); err != nil {
			return err
		}
	}
	return rows.Err()
}

func formatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case string:
		return strconv.Quote(x)
	case []byte:
		return "x'" + hex.EncodeToString(x) + "'"
	case bool:
		if x {
			return "1"
		}
		return "0"
	default:
		return fmt.Sprintf("%v", x)
	}
}

// Checksum is the SHA-256 of Dump, in hex.
func Checksum(ctx context.Context, q Querier) (string, error) {
	h := sha256.New()
	if err := Dump(ctx, q, h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DumpRegion writes the canonical form of the region's data only: the
// schema version, then every row of every domain table (the tables Apply
// writes), tables by name and rows by primary key. A node's own tables
// (the hub's change log, an edge's outbox) and schema objects are left
// out, so an edge replica and the hub compare equal when they hold the
// same region.
func DumpRegion(ctx context.Context, q Querier, w io.Writer) error {
	bw := bufio.NewWriter(w)
	var version int
	if err := queryRowInto(ctx, q, "PRAGMA user_version", &version); err != nil {
		return fmt.Errorf("dump: %w", err)
	}
	fmt.Fprintf(bw, "schema %d\n", version)
	for _, t := range Tables() {
		if err := dumpTable(ctx, q, bw, t.Name); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// RegionChecksum is the SHA-256 of DumpRegion, in hex.
func RegionChecksum(ctx context.Context, q Querier) (string, error) {
	h := sha256.New()
	if err := DumpRegion(ctx, q, h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
