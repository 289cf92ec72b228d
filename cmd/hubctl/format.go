package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// table writes aligned columns to stdout.
type table struct{ tw *tabwriter.Writer }

func (c *cli) table() *table {
	return &table{tw: tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)}
}

func (t *table) row(cells ...any) {
	s := make([]string, len(cells))
	for i, cell := range cells {
		s[i] = fmt.Sprint(cell)
	}
	fmt.Fprintln(t.tw, strings.Join(s, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// printJSON writes v as indented JSON.
func (c *cli) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(append(b, '\n'))
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// round shortens a duration for people: 1.234s, 56ms.
func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d
}

// bytesize formats n bytes in binary units: 512 B, 1.5 KiB, 3.2 GiB.
func bytesize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, unit := float64(n), ""
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		f /= 1024
		unit = u
		if f < 1024 {
			break
		}
	}
	return fmt.Sprintf("%.1f %s", f, unit)
}
