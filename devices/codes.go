package devices

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is what a scanned code is, so the edge can route a scan: a product
// (EAN-13, EAN-8, UPC-A), one of Endcap's own codes (loyalty card, coupon,
// app sign-in token), or anything else a scanner reads (Code128 labels,
// order numbers, QR text).
type Kind int

// The kinds of codes Classify tells apart.
const (
	KindUnknown     Kind = iota // nothing usable (empty, or not printable text)
	KindEAN13                   // 13-digit EAN with a valid check digit
	KindEAN8                    // 8-digit EAN with a valid check digit
	KindUPCA                    // 12-digit UPC-A with a valid check digit
	KindOther                   // any other printable code (Code128 labels, order numbers, QR text)
	KindLoyaltyCard             // "LC" + 9-digit account + Luhn check digit
	KindCoupon                  // "CPN-" + base32 text
	KindSignInToken             // "ECSI:" + token, from the shopper's app
)

var kindNames = [...]string{
	KindUnknown:     "unknown",
	KindEAN13:       "EAN-13",
	KindEAN8:        "EAN-8",
	KindUPCA:        "UPC-A",
	KindOther:       "other",
	KindLoyaltyCard: "loyalty-card",
	KindCoupon:      "coupon",
	KindSignInToken: "sign-in-token",
}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// IsProduct reports whether k is a retail product code (EAN-13, EAN-8 or
// UPC-A).
func (k Kind) IsProduct() bool { return k == KindEAN13 || k == KindEAN8 || k == KindUPCA }

// Errors of code validation. Scanner error events and Classify wrap them.
var (
	// ErrCheckDigit: the code has the shape of an EAN-13, EAN-8, UPC-A or
	// loyalty card, but its check digit is wrong (a misread or a typo).
	ErrCheckDigit = errors.New("check digit mismatch")
	// ErrMalformedCode: the code starts like one of Endcap's own codes
	// (LC, CPN-, ECSI:) but the rest does not follow its format, or an
	// AIM identifier names a symbology the data cannot be.
	ErrMalformedCode = errors.New("malformed code")
)

// Endcap's own codes. docs/devices.md describes them for people.
const (
	// LoyaltyPrefix starts a loyalty card code: "LC" + 9 account digits +
	// one Luhn check digit over those 9 digits, e.g. "LC1234567897".
	LoyaltyPrefix = "LC"
	// CouponPrefix starts a coupon code: "CPN-" + 8 to 64 characters of
	// RFC 4648 base32 (A-Z, 2-7, upper case, no padding). Devices only
	// recognises the shape; whether a coupon is genuine, unused and hers is
	// the edge's business.
	CouponPrefix = "CPN-"
	// SignInPrefix starts an app sign-in token (shown as a QR code by the
	// shopper's app): "ECSI:" + 16 to 512 characters of A-Z a-z 0-9 - _ .
	SignInPrefix = "ECSI:"

	loyaltyDigits     = 10 // after the prefix, check digit included
	couponMinLen      = 8
	couponMaxLen      = 64
	signInTokenMinLen = 16
	signInTokenMaxLen = 512
)

// Classify tells what kind of code a scan is, judging by its shape alone
// (use ClassifySymbology when the scanner reported a symbology). Digit
// strings of 13, 8 and 12 digits are EAN-13, EAN-8 and UPC-A; their check
// digit must hold.
//
// When the code looks like a kind but fails its rules, Classify returns
// that kind together with an error wrapping ErrCheckDigit or
// ErrMalformedCode, so the caller can say "that looked like a loyalty card
// but did not read right". An empty code, or one with bytes outside
// printable ASCII, is KindUnknown with ErrMalformedCode.
func Classify(code string) (Kind, error) {
	return ClassifySymbology(code, SymUnknown)
}

// ClassifySymbology is Classify for a code whose symbology the scanner
// reported. A digit string read from a non-EAN symbology (an order number
// in Code128, say) is KindOther and its last digit is not taken for a check
// digit; an EAN/UPC symbology whose data is not an EAN/UPC is an error
// (ErrMalformedCode). Endcap's own prefixes are recognised in any
// symbology.
func ClassifySymbology(code string, sym Symbology) (Kind, error) {
	if code == "" {
		return KindUnknown, fmt.Errorf("empty code: %w", ErrMalformedCode)
	}
	for i := 0; i < len(code); i++ {
		if !printable(code[i]) && code[i] != gs1Separator {
			return KindUnknown, fmt.Errorf("byte 0x%02x at %d is not printable: %w", code[i], i, ErrMalformedCode)
		}
	}
	switch {
	case strings.HasPrefix(code, SignInPrefix):
		return classifySignIn(code)
	case strings.HasPrefix(code, CouponPrefix):
		return classifyCoupon(code)
	case strings.HasPrefix(code, LoyaltyPrefix) && len(code) > len(LoyaltyPrefix) && allDigits(code[len(LoyaltyPrefix):]):
		return classifyLoyalty(code)
	}
	if sym.IsEANUPC() {
		k, err := classifyEAN(code)
		if k == KindUnknown {
			return KindOther, fmt.Errorf("%s data %q is not an EAN/UPC: %w", sym, code, ErrMalformedCode)
		}
		return k, err
	}
	if sym != SymUnknown {
		return KindOther, nil
	}
	if k, err := classifyEAN(code); k != KindUnknown {
		return k, err
	}
	return KindOther, nil
}

// classifyEAN returns KindUnknown if code is not a digit string of an
// EAN/UPC length.
func classifyEAN(code string) (Kind, error) {
	if !allDigits(code) {
		return KindUnknown, nil
	}
	var k Kind
	switch len(code) {
	case 13:
		k = KindEAN13
	case 8:
		k = KindEAN8
	case 12:
		k = KindUPCA
	default:
		return KindUnknown, nil
	}
	want := EANCheckDigit(code[:len(code)-1])
	if got := code[len(code)-1]; got != want {
		return k, fmt.Errorf("%s %s: check digit %c, want %c: %w", k, code, got, want, ErrCheckDigit)
	}
	return k, nil
}

func classifyLoyalty(code string) (Kind, error) {
	digits := code[len(LoyaltyPrefix):]
	if len(digits) != loyaltyDigits {
		return KindLoyaltyCard, fmt.Errorf("loyalty card %s: %d digits after %s, want %d: %w",
			code, len(digits), LoyaltyPrefix, loyaltyDigits, ErrMalformedCode)
	}
	want := LuhnCheckDigit(digits[:loyaltyDigits-1])
	if got := digits[loyaltyDigits-1]; got != want {
		return KindLoyaltyCard, fmt.Errorf("loyalty card %s: check digit %c, want %c: %w", code, got, want, ErrCheckDigit)
	}
	return KindLoyaltyCard, nil
}

func classifyCoupon(code string) (Kind, error) {
	body := code[len(CouponPrefix):]
	if len(body) < couponMinLen || len(body) > couponMaxLen {
		return KindCoupon, fmt.Errorf("coupon %q: %d characters after %s, want %d to %d: %w",
			code, len(body), CouponPrefix, couponMinLen, couponMaxLen, ErrMalformedCode)
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return KindCoupon, fmt.Errorf("coupon %q: %q is not base32: %w", code, c, ErrMalformedCode)
		}
	}
	return KindCoupon, nil
}

func classifySignIn(code string) (Kind, error) {
	tok := code[len(SignInPrefix):]
	if len(tok) < signInTokenMinLen || len(tok) > signInTokenMaxLen {
		return KindSignInToken, fmt.Errorf("sign-in token: %d characters, want %d to %d: %w",
			len(tok), signInTokenMinLen, signInTokenMaxLen, ErrMalformedCode)
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return KindSignInToken, fmt.Errorf("sign-in token: %q not allowed: %w", c, ErrMalformedCode)
		}
	}
	return KindSignInToken, nil
}

// EANCheckDigit returns the check digit ('0'-'9') for the digits of an
// EAN-13 (12 digits given), EAN-8 (7) or UPC-A (11): weights 3 and 1
// alternate from the rightmost digit given, and the check digit brings the
// sum to a multiple of 10. It returns 0 if digits holds a non-digit.
func EANCheckDigit(digits string) byte {
	sum := 0
	for i := 0; i < len(digits); i++ {
		c := digits[len(digits)-1-i]
		if c < '0' || c > '9' {
			return 0
		}
		d := int(c - '0')
		if i%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

// LuhnCheckDigit returns the Luhn (mod 10) check digit ('0'-'9') for
// digits: from the rightmost digit given, every other digit is doubled
// (subtracting 9 when that exceeds 9). It returns 0 if digits holds a
// non-digit.
func LuhnCheckDigit(digits string) byte {
	sum := 0
	for i := 0; i < len(digits); i++ {
		c := digits[len(digits)-1-i]
		if c < '0' || c > '9' {
			return 0
		}
		d := int(c - '0')
		if i%2 == 0 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return byte('0' + (10-sum%10)%10)
}

// LoyaltyCode returns the loyalty card code for a 9-digit account number:
// "LC" + account + Luhn check digit.
func LoyaltyCode(account string) (string, error) {
	if len(account) != loyaltyDigits-1 || !allDigits(account) {
		return "", fmt.Errorf("loyalty account %q: want %d digits: %w", account, loyaltyDigits-1, ErrMalformedCode)
	}
	return LoyaltyPrefix + account + string(LuhnCheckDigit(account)), nil
}

// gs1Separator is ASCII GS, the FNC1 field separator GS1-128 and GS1
// DataMatrix data carry between variable-length fields.
const gs1Separator = 0x1d

func printable(c byte) bool { return c >= 0x20 && c <= 0x7e }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
