package retail

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// PIN hashes are "pbkdf2-sha256$<iterations>$<salt>$<key>" (base64, no
// padding). The hash is made where the PIN is typed; only the hash travels.
const pinIterations = 120_000

// HashPIN hashes a clerk's PIN with a fresh random salt.
func HashPIN(pin string) (string, error) {
	if len(pin) < 4 {
		return "", fmt.Errorf("a PIN has at least 4 digits")
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash pin: %w", err)
	}
	return hashPIN(pin, salt, pinIterations)
}

func hashPIN(pin string, salt []byte, iter int) (string, error) {
	key, err := pbkdf2.Key(sha256.New, pin, salt, iter, 32)
	if err != nil {
		return "", fmt.Errorf("hash pin: %w", err)
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", iter, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

func parsePINHash(h string) (iter int, salt, key []byte, ok bool) {
	parts := strings.Split(h, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return 0, nil, nil, false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1000 || iter > 10_000_000 {
		return 0, nil, nil, false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[2])
	key, err2 := enc.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) != 32 {
		return 0, nil, nil, false
	}
	return iter, salt, key, true
}

func validPINHash(h string) bool {
	_, _, _, ok := parsePINHash(h)
	return ok
}

// VerifyPIN reports whether pin matches hash, in constant time.
func VerifyPIN(hash, pin string) bool {
	iter, salt, key, ok := parsePINHash(hash)
	if !ok {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, pin, salt, iter, len(key))
	return err == nil && subtle.ConstantTimeCompare(got, key) == 1
}
