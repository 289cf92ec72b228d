package demodata

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
)

// Entity ids are functions of a counter or an index, so a referral can name
// an earlier customer without a list of customers, and the same config
// gives the same ids.

func customerID(i int) string { return fmt.Sprintf("cust-%07d", i+1) }

// loyaltyCard is a card number as the scanners read it (devices.Classify):
// "LC", 9 digits of account, a Luhn check digit.
func loyaltyCard(i int) string {
	account := fmt.Sprintf("%09d", i+1)
	return "LC" + account + string(luhn(account))
}

// luhn is the Luhn check digit of digits.
func luhn(digits string) byte {
	sum := 0
	for k := 0; k < len(digits); k++ {
		d := int(digits[len(digits)-1-k] - '0')
		if k%2 == 0 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}
func productSKU(i int) string { return fmt.Sprintf("SKU-%05d", i+1) }
func storeID(i int) string    { return fmt.Sprintf("S%02d", i+1) }
func clerkID(loc string, n int) string {
	return fmt.Sprintf("clerk-%s-%02d", loc, n)
}

const (
	dcID    = "DC1"
	adminID = "clerk-admin"
	origin  = "demo"
	// DemoPIN is every demo clerk's PIN.
	DemoPIN = "1234"
	// pinIterations is the least retail's PIN hash parser accepts: enough
	// for demo credentials, and fast enough to hash one per clerk.
	pinIterations = 1000
)

// splitmix64 mixes x into a well-spread 64-bit value (Steele et al.); it
// derives the independent keys of the generator from the seed.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// ean13 appends the EAN-13 check digit to 12 digits.
func ean13(digits12 string) string {
	sum := 0
	for i, r := range digits12 {
		d := int(r - '0')
		if i%2 == 1 {
			d *= 3
		}
		sum += d
	}
	return digits12 + strconv.Itoa((10-sum%10)%10)
}

// validEAN13 reports whether s is 13 digits with a correct check digit.
func validEAN13(s string) bool {
	if len(s) != 13 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return ean13(s[:12]) == s
}

// barcode is product p's n-th barcode (n = 0 or 1): the GS1 prefix 200-299
// is for in-store numbering, so demo barcodes never collide with real goods.
func barcode(p, n int) string {
	return ean13(fmt.Sprintf("2%d%010d", n, p+1))
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// couponCode turns the n-th coupon into a code that looks random: an odd
// multiplier and a key make a bijection on 40 bits, so codes never repeat.
func couponCode(n uint64, key uint64) string {
	x := (n*0x9E3779B97F4A7C15 + key) & (1<<40 - 1)
	var b [9]byte
	j := len(b) - 1
	for i := 0; i < 8; i++ {
		if i == 4 {
			b[j] = '-'
			j--
		}
		b[j] = crockford[x&31]
		x >>= 5
		j--
	}
	return "C-" + string(b[:])
}

// cardToken is the payment processor's token for customer i's card n.
func cardToken(key uint64, i, n int) string {
	return fmt.Sprintf("tok_%016x", splitmix64(key^uint64(i)<<4^uint64(n)))
}

// phoneNumber is customer i's phone: E.164, a region area code, and a
// seven-digit number that is unique per customer (7919 is prime, so i*7919
// mod 8,000,000 is a bijection below 8 million customers).
func phoneNumber(area string, i int, key uint64) string {
	n := 2_000_000 + (uint64(i)*7919+key%8_000_000)%8_000_000
	return fmt.Sprintf("+1%s%07d", area, n)
}

// pinHash hashes DemoPIN the way retail.HashPIN does, with a salt derived
// from the seed and the clerk, so the database is deterministic.
func pinHash(seed uint64, clerk string) (string, error) {
	sum := sha256.Sum256(fmt.Appendf(nil, "endcap demodata pin salt %d %s", seed, clerk))
	salt := sum[:16]
	key, err := pbkdf2.Key(sha256.New, DemoPIN, salt, pinIterations, 32)
	if err != nil {
		return "", fmt.Errorf("hash pin: %w", err)
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", pinIterations, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Random helpers.

func chance(r *rand.Rand, p float64) bool { return r.Float64() < p }

// between is uniform in [lo, hi).
func between(r *rand.Rand, lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + r.Int64N(hi-lo)
}

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

// poisson draws from a Poisson distribution with mean lambda.
func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	if lambda > 30 {
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())))
	}
	l := math.Exp(-lambda)
	k, p := 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// weighted picks an index with probability proportional to its weight.
func weighted(r *rand.Rand, weights ...float64) int {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	x := r.Float64() * sum
	for i, w := range weights {
		if x < w {
			return i
		}
		x -= w
	}
	return len(weights) - 1
}
