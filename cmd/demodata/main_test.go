package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/retail"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestGenerateThenSummarize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "region.db")
	stdout, stderr, err := runCLI(t, "--out", path, "--customers", "40", "--products", "30", "--stores", "2", "--seed", "3")
	if err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr)
	}
	for _, want := range []string{"customers", "demodata: wrote " + path, "mutations/s"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("generate output lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "demodata: 100% 40/40 customers") {
		t.Errorf("progress on a non-terminal lacks the 100%% line:\n%s", stderr)
	}
	for _, leftover := range []string{path + ".partial", path + "-wal"} {
		if _, err := os.Stat(leftover); err == nil {
			t.Errorf("%s left behind", leftover)
		}
	}

	stdout, _, err = runCLI(t, "--summary", "--out", path)
	if err != nil {
		t.Fatalf("summary: %v", err)
	}
	db, err := retail.Open(context.Background(), path, retail.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := retail.Checksum(context.Background(), db)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"schema version", "customers", "40", "applied_mutations", "checksum " + sum} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
}

func TestRefusesToOverwriteWithoutForce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "region.db")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCLI(t, "--out", path, "--customers", "5", "--products", "10", "--stores", "1")
	if err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("generate over an existing file: %v, want an error naming --force", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Fatalf("the existing file was changed to %q", b)
	}
	if _, _, err := runCLI(t, "--out", path, "--customers", "5", "--products", "10", "--stores", "1", "--force"); err != nil {
		t.Fatalf("generate with --force: %v", err)
	}
	if stdout, _, err := runCLI(t, "--summary", "--out", path); err != nil || !strings.Contains(stdout, "customers") {
		t.Fatalf("summary of the overwritten file: %v\n%s", err, stdout)
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		stdout, _, err := runCLI(t, arg)
		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		for _, want := range []string{"Usage: demodata", "Examples:", "-customers", "-summary", "-force", "1234"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s output lacks %q:\n%s", arg, want, stdout)
			}
		}
	}
}

func TestCommandLineMistakes(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool // a usage error (exit 2) rather than a failure
		want  string
	}{
		{"no out", []string{"--customers", "5"}, true, "--out is required"},
		{"unknown flag", []string{"--out", filepath.Join(dir, "a.db"), "--bogus"}, true, "bogus"},
		{"bad number", []string{"--out", filepath.Join(dir, "a.db"), "--customers", "many"}, true, "customers"},
		{"no customers", []string{"--out", filepath.Join(dir, "a.db"), "--customers", "0"}, true, "--customers"},
		{"no stores", []string{"--out", filepath.Join(dir, "a.db"), "--stores", "-1"}, true, "--stores"},
		{"no cache", []string{"--out", filepath.Join(dir, "a.db"), "--cache-mib", "0"}, true, "--cache-mib"},
		{"stray argument", []string{"--out", filepath.Join(dir, "a.db"), "extra"}, true, "extra"},
		{"summary of nothing", []string{"--summary", "--out", filepath.Join(dir, "missing.db")}, false, "missing.db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
			var ue usageError
			if got := errors.As(err, &ue); got != tc.usage {
				t.Errorf("usage error = %v, want %v (%v)", got, tc.usage, err)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "a.db")); err == nil {
		t.Error("a failed command line created its --out file")
	}
}

func TestProgressLines(t *testing.T) {
	var buf bytes.Buffer
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	p := newProgress(&buf, false, start)
	p.now = func() time.Time { return now }
	for done := 0; done <= 200; done++ {
		now = start.Add(time.Duration(done) * time.Second)
		p.mutations(done * 10)
		p.customers(done, 200)
	}
	p.finish()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 20 {
		t.Errorf("%d progress lines, want one per 5%%:\n%s", len(lines), buf.String())
	}
	if want := "demodata: 50% 100/200 customers, 10 mutations/s, ETA 1m40s"; lines[9] != want {
		t.Errorf("line 10 = %q, want %q", lines[9], want)
	}
}
