package replication

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Lines written by mosquitto_passwd 2.0.11 (Debian 12): alice's password
// is "secret" ($7$, the default) and bob's is "pw" (-H sha512, $6$).
const (
	goldenAlice = `alice:$7$101$hxWiWJNn2rLUp+KV$5Zi504/bb8/23FSA7+leseMrqmf80iwY5UNHCiQ5o5F6A4luFCxDRkujRmt/VJOzJWcb+TnphPE7DNqEdCZvBg==`
	goldenBob   = `bob:$6$4qRU7Yj+AZcGdXxR$lhEqz3hQ9qx2sapkomgTh6GpRASul/oA1cqMnio06z3JSs8PlcbPD8PLclgW66pTumRybcTIaiSg4S4womb5Nw==`
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwords")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPasswordsVerifyMosquittoHashes(t *testing.T) {
	t.Parallel()
	p, err := LoadPasswords(writeFile(t, "# users\n"+goldenAlice+"\n\n"+goldenBob+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, pw string
		want           bool
	}{
		{"$7$ right", "alice", "secret", true},
		{"$7$ wrong", "alice", "Secret", false},
		{"$7$ empty", "alice", "", false},
		{"$6$ right", "bob", "pw", true},
		{"$6$ wrong", "bob", "pw ", false},
		{"other's password", "bob", "secret", false},
		{"unknown user", "carol", "secret", false},
		{"no user", "", "secret", false},
		{"comment as user", "# users", "", false},
	} {
		if got := p.Verify(tc.user, tc.pw); got != tc.want {
			t.Errorf("%s: Verify(%q, %q) = %v, want %v", tc.name, tc.user, tc.pw, got, tc.want)
		}
	}
	if got := strings.Join(p.Users(), ","); got != "alice,bob" {
		t.Errorf("Users() = %s", got)
	}
}

// TestHashPasswordFormat: our hashes have mosquitto_passwd's shape, and
// each has its own salt.
func TestHashPasswordFormat(t *testing.T) {
	t.Parallel()
	shape := regexp.MustCompile(`^\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==$`)
	a, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := HashPassword("correct horse")
	if !shape.MatchString(a) || a == b {
		t.Errorf("hashes %q, %q: want the $7$ shape, different salts", a, b)
	}
	h, err := parseHash(a)
	if err != nil || !h.matches("correct horse") || h.matches("correct horsE") {
		t.Errorf("parse %q: %v", a, err)
	}
	if _, err := HashPassword(""); !errors.Is(err, ErrNoPassword) {
		t.Errorf("empty password: %v", err)
	}
	if p1, p2 := GeneratePassword(), GeneratePassword(); len(p1) != 32 || p1 == p2 || strings.ContainsAny(p1, "+/=:") {
		t.Errorf("GeneratePassword: %q, %q", p1, p2)
	}
}

// TestMosquittoPasswdAgrees: a file mosquitto_passwd writes now verifies
// here (the golden lines above pin one version; this checks the installed
// one).
func TestMosquittoPasswdAgrees(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed (make deps installs mosquitto)")
	}
	path := filepath.Join(t.TempDir(), "pw")
	for _, args := range [][]string{{"-c", "-b", path, "store-1", "s3cret:with$odd chars"}, {"-H", "sha512", "-b", path, "wallet", "w"}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %v: %v\n%s", args, err, out)
		}
	}
	p, err := LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Verify("store-1", "s3cret:with$odd chars") || !p.Verify("wallet", "w") || p.Verify("store-1", "w") {
		t.Errorf("mosquitto_passwd's hashes do not verify as they should:\n%s", p.Marshal())
	}
}

func TestLoadPasswordsErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, content, want string
	}{
		{"plain text", "hub:secret\n", "line 1: user hub: not a mosquitto password hash"},
		{"no colon", "# x\nhub\n", "line 2: want user:hash"},
		{"empty hash", "hub:\n", "line 1: want user:hash"},
		{"unknown type", "hub:$2y$10$abc\n", "unknown password hash type $2y$"},
		{"short $7$", "hub:$7$101$abc\n", "malformed $7$ hash"},
		{"bad iterations", "hub:$7$0$aGVsbG9oZWxsb2hl$aGVsbG8=\n", "bad iteration count"},
		{"bad salt", "hub:$7$101$aGVsbG8=$" + strings.Repeat("A", 86) + "==\n", "bad salt"},
		{"short hash", "hub:$7$101$hxWiWJNn2rLUp+KV$aGVsbG8=\n", "bad hash"},
		{"bad user", "a b:" + goldenAlice[len("alice:"):] + "\n", "line 1: user"},
		{"duplicate", goldenAlice + "\n" + goldenAlice + "\n", "user alice listed again (first on line 1)"},
	} {
		_, err := LoadPasswords(writeFile(t, tc.content))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if _, err := LoadPasswords(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// TestPasswordsEditSave: Set, Remove and Save keep comments and order,
// write atomically with mode 0600, and the result loads again.
func TestPasswordsEditSave(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "# Endcap demo region\n"+goldenAlice+"\n\n# stores\n"+goldenBob+"\n")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Set("store-1", "one"); err != nil {
		t.Fatal(err)
	}
	if err := p.Set("alice", "new"); err != nil {
		t.Fatal(err)
	}
	if !p.Remove("bob") || p.Remove("bob") {
		t.Error("Remove(bob) twice: want true, then false")
	}
	if err := p.Set("a/b", "x"); err == nil {
		t.Error("Set with a user that is no id: no error")
	}
	if err := p.Set("store-2", ""); !errors.Is(err, ErrNoPassword) {
		t.Errorf("Set with an empty password: %v", err)
	}
	if err := p.Save(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after Save over a 0644 file: %v, want 0640 (no access for others)", fi.Mode())
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 5 || lines[0] != "# Endcap demo region" || !strings.HasPrefix(lines[1], "alice:$7$") ||
		lines[1] == goldenAlice || lines[2] != "" || lines[3] != "# stores" || !strings.HasPrefix(lines[4], "store-1:$7$") {
		t.Errorf("saved file:\n%s", data)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("Save left files behind: %v", entries)
	}
	q, err := LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if !q.Verify("alice", "new") || q.Verify("alice", "secret") || !q.Verify("store-1", "one") || q.Has("bob") {
		t.Errorf("reloaded set does not verify as saved: %v", q.Users())
	}

	fresh := filepath.Join(t.TempDir(), "new")
	if err := (&Passwords{}).Save(fresh); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new file: %v %v, want mode 0600", fi.Mode(), err)
	}
}

// TestPasswordsReload: Reload picks up a changed file and keeps the old
// set when the new file is broken.
func TestPasswordsReload(t *testing.T) {
	t.Parallel()
	path := writeFile(t, goldenAlice+"\n")
	p, err := LoadPasswords(path)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := p.Reload(); changed || err != nil {
		t.Errorf("Reload of an unchanged file: %v %v", changed, err)
	}
	other := &Passwords{}
	if err := other.Set("store-9", "nine"); err != nil {
		t.Fatal(err)
	}
	if err := other.Save(path); err != nil {
		t.Fatal(err)
	}
	if changed, err := p.Reload(); !changed || err != nil {
		t.Fatalf("Reload after Save: %v %v", changed, err)
	}
	if !p.Verify("store-9", "nine") || p.Has("alice") {
		t.Errorf("after reload: %v", p.Users())
	}
	if err := os.WriteFile(path, []byte("broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Reload(); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("Reload of a broken file: %v", err)
	}
	if !p.Verify("store-9", "nine") {
		t.Error("a failed Reload lost the last good set")
	}
	if changed, err := (&Passwords{}).Reload(); changed || err != nil {
		t.Errorf("Reload of a set from no file: %v %v", changed, err)
	}
}
