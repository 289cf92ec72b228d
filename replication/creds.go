package replication

import (
	"bufio"
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Password hashes are those of mosquitto 2.0's password_file, so one file
// serves mosquitto, the embedded broker and the hub's snapshot endpoint:
//
//	user:$7$<iterations>$<base64 salt>$<base64 hash>   PBKDF2-HMAC-SHA512 (mosquitto 2.0)
//	user:$6$<base64 salt>$<base64 hash>                SHA512(password || salt) (mosquitto 1.x)
//
// with standard, padded base64, a 12-byte salt and a 64-byte hash.
const (
	hashIterations = 101 // mosquitto_passwd's default
	saltLen        = 12
	hashLen        = sha512.Size
)

// ErrNoPassword is returned by HashPassword and Passwords.Set for an empty
// password.
var ErrNoPassword = errors.New("empty password")

// HashPassword hashes pw for a password file, as mosquitto_passwd 2.0 does:
// "$7$101$<salt>$<hash>", PBKDF2-HMAC-SHA512 with 101 iterations over a
// random 12-byte salt. The iteration count is mosquitto's; it is cheap, so
// give edges long random passwords (GeneratePassword), not words.
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", ErrNoPassword
	}
	salt := make([]byte, saltLen)
	rand.Read(salt) // never fails (crypto/rand)
	sum, err := pbkdf2.Key(sha512.New, pw, salt, hashIterations, hashLen)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return "$7$" + strconv.Itoa(hashIterations) + "$" + b64(salt) + "$" + b64(sum), nil
}

// GeneratePassword returns a random password of 32 URL-safe characters
// (192 bits), fit for an edge's broker credentials.
func GeneratePassword() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// passwordHash is one parsed hash.
type passwordHash struct {
	kind       byte // '6' or '7'
	iterations int  // for '7'
	salt, sum  []byte
}

// parseHash parses a mosquitto $6$ or $7$ hash.
func parseHash(s string) (passwordHash, error) {
	parts := strings.Split(s, "$")
	if len(parts) < 2 || parts[0] != "" {
		return passwordHash{}, errors.New("not a mosquitto password hash ($6$ or $7$); a plain-text password? hash it with 'hubctl credentials add' or 'mosquitto_passwd -U'")
	}
	var h passwordHash
	switch {
	case parts[1] == "7" && len(parts) == 5:
		h.kind = '7'
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 1 {
			return h, fmt.Errorf("$7$ hash: bad iteration count %q", parts[2])
		}
		h.iterations = n
		parts = parts[3:]
	case parts[1] == "6" && len(parts) == 4:
		h.kind = '6'
		parts = parts[2:]
	case parts[1] == "6" || parts[1] == "7":
		return h, fmt.Errorf("malformed $%s$ hash", parts[1])
	default:
		return h, fmt.Errorf("unknown password hash type $%s$ (want $6$ or $7$, as mosquitto 1.x/2.0 write)", parts[1])
	}
	var err error
	if h.salt, err = base64.StdEncoding.DecodeString(parts[0]); err != nil || (len(h.salt) != saltLen && len(h.salt) != hashLen) {
		return h, errors.New("bad salt: want base64 of 12 (or 64) bytes")
	}
	if h.sum, err = base64.StdEncoding.DecodeString(parts[1]); err != nil || len(h.sum) != hashLen {
		return h, errors.New("bad hash: want base64 of 64 bytes")
	}
	return h, nil
}

// digest computes the hash of pw with h's algorithm and salt.
func (h passwordHash) digest(pw string) []byte {
	if h.kind == '6' {
		d := sha512.New()
		d.Write([]byte(pw))
		d.Write(h.salt)
		return d.Sum(nil)
	}
	sum, err := pbkdf2.Key(sha512.New, pw, h.salt, h.iterations, hashLen)
	if err != nil {
		return nil
	}
	return sum
}

func (h passwordHash) matches(pw string) bool {
	got := h.digest(pw)
	return got != nil && subtle.ConstantTimeCompare(got, h.sum) == 1
}

// dummyHash is checked against when a user is unknown, so that an unknown
// user takes as long to refuse as a wrong password.
var dummyHash = passwordHash{kind: '7', iterations: hashIterations, salt: make([]byte, saltLen), sum: make([]byte, hashLen)}

// pwLine is one line of a password file: an entry (user set) or a line
// kept as it was (comment or blank).
type pwLine struct {
	user string
	hash string // as written in the file
	h    passwordHash
	raw  string // for a comment or blank line
}

// fileStamp identifies a version of a file for Reload.
type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func stampOf(fi os.FileInfo) fileStamp {
	s := fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}

// Passwords is a set of users and password hashes in mosquitto's
// password_file format: one "user:hash" a line, '#' comments. Comments,
// blank lines and the order of users survive Load, Set, Remove and Save.
//
// The zero value is an empty set, ready for use. A Passwords is safe for
// concurrent use: the broker verifies while an operator tool may Set, and
// Reload swaps in the file's new contents atomically.
type Passwords struct {
	mu    sync.RWMutex
	lines []pwLine
	path  string // the file it was loaded from, for Reload
	stamp fileStamp
}

// LoadPasswords reads a password file. Every entry must be a $6$ or $7$
// hash (see HashPassword) of a user name that passes ValidID; a malformed
// line, an unknown hash type or a user listed twice is an error naming the
// line, rather than a user silently locked out.
func LoadPasswords(path string) (*Passwords, error) {
	p := &Passwords{}
	if err := p.load(path); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Passwords) load(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load passwords: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("load passwords: %w", err)
	}
	lines, err := parsePasswords(f)
	if err != nil {
		return fmt.Errorf("load passwords %s: %w", path, err)
	}
	p.mu.Lock()
	p.lines, p.path, p.stamp = lines, path, stampOf(fi)
	p.mu.Unlock()
	return nil
}

func parsePasswords(f *os.File) ([]pwLine, error) {
	var lines []pwLine
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimRight(sc.Text(), " \t\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			lines = append(lines, pwLine{raw: text})
			continue
		}
		user, hash, ok := strings.Cut(text, ":")
		user, hash = strings.TrimSpace(user), strings.TrimSpace(hash)
		if !ok || hash == "" {
			return nil, fmt.Errorf("line %d: want user:hash", n)
		}
		if err := ValidID(user); err != nil {
			return nil, fmt.Errorf("line %d: user: %w", n, err)
		}
		if prev, dup := seen[user]; dup {
			return nil, fmt.Errorf("line %d: user %s listed again (first on line %d)", n, user, prev)
		}
		seen[user] = n
		h, err := parseHash(hash)
		if err != nil {
			return nil, fmt.Errorf("line %d: user %s: %w", n, user, err)
		}
		lines = append(lines, pwLine{user: user, hash: hash, h: h})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return lines, nil
}

// Reload re-reads the file p was loaded from if it changed since (size,
// modification time or inode), and reports whether it did. On an error p
// keeps what it had. A Passwords not loaded from a file never changes.
func (p *Passwords) Reload() (bool, error) {
	p.mu.RLock()
	path, stamp := p.path, p.stamp
	p.mu.RUnlock()
	if path == "" {
		return false, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return false, fmt.Errorf("reload passwords: %w", err)
	}
	if stampOf(fi) == stamp {
		return false, nil
	}
	if err := p.load(path); err != nil {
		return false, err
	}
	return true, nil
}

func (p *Passwords) find(user string) int {
	for i, l := range p.lines {
		if l.user != "" && l.user == user {
			return i
		}
	}
	return -1
}

// Verify reports whether password is user's. It compares in constant time
// and takes as long for an unknown user as for a wrong password.
func (p *Passwords) Verify(user, password string) bool {
	p.mu.RLock()
	h, known := dummyHash, false
	if i := p.find(user); i >= 0 && user != "" {
		h, known = p.lines[i].h, true
	}
	p.mu.RUnlock()
	ok := h.matches(password)
	return known && ok && password != ""
}

// Has reports whether user is in the set.
func (p *Passwords) Has(user string) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return user != "" && p.find(user) >= 0
}

// Users returns the user names, sorted.
func (p *Passwords) Users() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var users []string
	for _, l := range p.lines {
		if l.user != "" {
			users = append(users, l.user)
		}
	}
	slices.Sort(users)
	return users
}

// Set adds user with password, or replaces its password. The user name
// must pass ValidID (it names the edge's topics).
func (p *Passwords) Set(user, password string) error {
	if err := ValidID(user); err != nil {
		return fmt.Errorf("set password: user: %w", err)
	}
	hash, err := HashPassword(password)
	if err != nil {
		return fmt.Errorf("set password for %s: %w", user, err)
	}
	h, err := parseHash(hash)
	if err != nil {
		return fmt.Errorf("set password for %s: %w", user, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	line := pwLine{user: user, hash: hash, h: h}
	if i := p.find(user); i >= 0 {
		p.lines[i] = line
	} else {
		p.lines = append(p.lines, line)
	}
	return nil
}

// Remove deletes user and reports whether it was there.
func (p *Passwords) Remove(user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.find(user)
	if i < 0 || user == "" {
		return false
	}
	p.lines = slices.Delete(p.lines, i, i+1)
	return true
}

// Marshal returns the file's contents.
func (p *Passwords) Marshal() []byte {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var b bytes.Buffer
	for _, l := range p.lines {
		if l.user == "" {
			b.WriteString(l.raw)
		} else {
			b.WriteString(l.user + ":" + l.hash)
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Save writes the set to path atomically: to a temporary file beside it,
// synced, then renamed over path. A new file gets mode 0600; an existing
// file keeps its owner, group and mode (less any access for others), so a
// file an operator made readable to the mosquitto user stays readable.
func (p *Passwords) Save(path string) error {
	mode, uid, gid := os.FileMode(0o600), -1, -1
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm() &^ 0o007
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("save passwords: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone once renamed
	_, err = tmp.Write(p.Marshal())
	if err == nil {
		err = tmp.Chmod(mode)
	}
	if err == nil && uid >= 0 && (uid != os.Getuid() || gid != os.Getgid()) {
		_ = tmp.Chown(uid, gid) // best effort: only root may give files away
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("save passwords %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
