package sim

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/endcap/endcap/devices"
)

// ScannerOptions configure a virtual scanner.
type ScannerOptions struct {
	// Link is the path the application opens (a symlink to the pty);
	// empty means none (open the pty slave, Path).
	Link string
	// Framing is how the scanner frames what it sends: prefix, suffix,
	// AIM identifiers. Set the application's ScannerConfig.Framing to match
	// (or not, to see what a misconfigured scanner looks like).
	Framing devices.Framing
}

// Scanner is a virtual serial barcode scanner on a pseudo-terminal: what
// it "reads" it sends framed as a real one would. Methods are safe for
// concurrent use.
type Scanner struct {
	dev *Device
	f   devices.Framing
}

// NewScanner starts a virtual scanner; Close stops it.
func NewScanner(opts ScannerOptions) (*Scanner, error) {
	dev, err := NewDevice(opts.Link)
	if err != nil {
		return nil, err
	}
	return &Scanner{dev: dev, f: opts.Framing}, nil
}

// Path is what the application opens.
func (s *Scanner) Path() string { return s.dev.Path() }

// TTY is the pty slave behind Path.
func (s *Scanner) TTY() string { return s.dev.TTY() }

// Frame returns the bytes the scanner sends for code, with aim as its AIM
// identifier when the framing has AIM on (empty aim: guessed from the
// code's shape, see GuessAIM).
func (s *Scanner) Frame(code, aim string) []byte {
	var b []byte
	b = append(b, s.f.Prefix...)
	if s.f.AIM {
		if aim == "" {
			aim = GuessAIM(code)
		}
		b = append(b, aim...)
	}
	b = append(b, code...)
	return append(b, s.f.Suffix.Bytes()...)
}

// Scan sends code as one framed scan, in a single write.
func (s *Scanner) Scan(code string) error { return s.Send(s.Frame(code, "")) }

// ScanAIM sends code with an explicit AIM identifier ("]E0").
func (s *Scanner) ScanAIM(aim, code string) error { return s.Send(s.Frame(code, aim)) }

// Send writes raw bytes: partial frames, noise, anything.
func (s *Scanner) Send(raw []byte) error {
	_, err := s.dev.Write(raw)
	if err != nil {
		return fmt.Errorf("virtual scanner: %w", err)
	}
	return nil
}

// Garbage sends n bytes of line noise (no suffix byte among them), as a
// loose cable or a wrong baud rate produce, then the suffix.
func (s *Scanner) Garbage(n int, rng *rand.Rand) error {
	if rng == nil {
		rng = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	}
	suffix := s.f.Suffix.Bytes()
	b := make([]byte, 0, n+len(suffix))
	for len(b) < n {
		c := byte(rng.UintN(256))
		if c == '\r' || c == '\n' || c == '\t' || c >= 0x20 && c < 0x7f {
			continue // keep it unmistakably noise
		}
		b = append(b, c)
	}
	return s.Send(append(b, suffix...))
}

// Replay scans the codes in r, one a line, every interval, until the end
// of r or of ctx. Blank lines and lines starting with # are skipped; with
// AIM framing, a line starting with ']' carries its own identifier
// ("]E04006381333931"). It returns how many codes it sent.
func (s *Scanner) Replay(ctx context.Context, r io.Reader, interval time.Duration) (int, error) {
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if n > 0 && interval > 0 {
			t := time.NewTimer(interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return n, ctx.Err()
			case <-t.C:
			}
		}
		aim := ""
		if s.f.AIM && len(line) > 3 && line[0] == ']' {
			aim, line = line[:3], line[3:]
		}
		if err := s.Send(s.Frame(line, aim)); err != nil {
			return n, err
		}
		n++
	}
	return n, sc.Err()
}

// GuessAIM returns the AIM identifier a scanner would send for code: ]E0
// for 13 or 12 digits (EAN-13, UPC-A), ]E4 for 8 digits, ]Q1 for an app
// sign-in token (a QR code), ]C0 (Code128) otherwise.
func GuessAIM(code string) string {
	switch {
	case isDigits(code) && (len(code) == 13 || len(code) == 12):
		return "]E0"
	case isDigits(code) && len(code) == 8:
		return "]E4"
	case strings.HasPrefix(code, devices.SignInPrefix):
		return "]Q1"
	}
	return "]C0"
}

// Unread is the number of bytes sent that the application has not read.
func (s *Scanner) Unread() (int, error) { return s.dev.Unread() }

// Unplug pulls the scanner's cable: the link goes, the application's
// port hangs up.
func (s *Scanner) Unplug() error { return s.dev.Unplug() }

// Replug plugs it back in behind the same link.
func (s *Scanner) Replug() error { return s.dev.Replug() }

// Plugged reports whether the scanner is plugged in.
func (s *Scanner) Plugged() bool { return s.dev.Plugged() }

// Close stops the scanner and removes its link.
func (s *Scanner) Close() error { return s.dev.Close() }
