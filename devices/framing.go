package devices

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Suffix is how a scanner ends each scan it sends. Its zero value is
// SuffixCR, the factory setting of most serial scanners.
type Suffix int

// The suffixes a scanner can be set to send.
const (
	SuffixCR   Suffix = iota // "\r"; an LF after it (a CRLF scanner) is dropped
	SuffixLF                 // "\n"; a CR right before it is dropped
	SuffixCRLF               // "\r\n": the frame ends at CR, the LF that follows is dropped
	SuffixTab                // "\t"
	SuffixNone               // nothing: a scan ends when the line has been idle for Framing.IdleTimeout
)

var suffixNames = [...]string{SuffixCR: "cr", SuffixLF: "lf", SuffixCRLF: "crlf", SuffixTab: "tab", SuffixNone: "none"}

func (s Suffix) String() string {
	if s >= 0 && int(s) < len(suffixNames) {
		return suffixNames[s]
	}
	return fmt.Sprintf("Suffix(%d)", int(s))
}

// Bytes returns what a scanner sends after each code for this suffix.
func (s Suffix) Bytes() []byte {
	switch s {
	case SuffixCR:
		return []byte{'\r'}
	case SuffixLF:
		return []byte{'\n'}
	case SuffixCRLF:
		return []byte{'\r', '\n'}
	case SuffixTab:
		return []byte{'\t'}
	}
	return nil
}

// ParseSuffix reads a suffix name as configuration spells it: cr, lf,
// crlf, tab or none (case does not matter).
func ParseSuffix(s string) (Suffix, error) {
	for i, n := range suffixNames {
		if strings.EqualFold(s, n) {
			return Suffix(i), nil
		}
	}
	return 0, fmt.Errorf("unknown scanner suffix %q (want cr, lf, crlf, tab or none)", s)
}

// Framing says how a scanner frames the codes it sends: an optional fixed
// prefix, an optional AIM symbology identifier, the code, a suffix. The
// zero value is a bare code ended by CR, with the defaults below.
type Framing struct {
	// Prefix is sent before every code (some scanners are set to send STX,
	// "\x02"). Empty means none. Bytes before the prefix are reported as
	// noise.
	Prefix string
	// Suffix ends every code.
	Suffix Suffix
	// AIM: the scanner sends an AIM symbology identifier ("]E0") before
	// each code. A frame without one is still accepted, with SymUnknown.
	AIM bool
	// IdleTimeout ends a frame with SuffixNone when no byte arrived for this
	// long. Zero means 100ms. The serial read timeout has 100 ms steps, so
	// frames end between IdleTimeout and IdleTimeout plus one read timeout
	// after their last byte.
	IdleTimeout time.Duration
	// FrameTimeout: bytes of a frame whose suffix has not come after this
	// much silence are reported as a partial frame (ErrPartialFrame). Zero
	// means 1s.
	FrameTimeout time.Duration
	// MaxLength is the longest frame accepted, prefix and AIM identifier
	// included. A longer one is reported (ErrFrameTooLong) and the rest of
	// it, up to the next suffix or silence, is dropped. Zero means 1024.
	MaxLength int
}

func (f Framing) withDefaults() Framing {
	if f.IdleTimeout <= 0 {
		f.IdleTimeout = 100 * time.Millisecond
	}
	if f.FrameTimeout <= 0 {
		f.FrameTimeout = time.Second
	}
	if f.MaxLength <= 0 {
		f.MaxLength = 1024
	}
	return f
}

func (f Framing) validate() error {
	if f.Suffix < SuffixCR || f.Suffix > SuffixNone {
		return fmt.Errorf("framing: unknown suffix %d", int(f.Suffix))
	}
	for i := 0; i < len(f.Prefix); i++ {
		if t := f.Suffix.Bytes(); len(t) > 0 && f.Prefix[i] == t[0] {
			return fmt.Errorf("framing: prefix %q holds the suffix byte", f.Prefix)
		}
	}
	return nil
}

// Errors reported by scanner error events (Event.Err wraps one of them or
// one of ErrCheckDigit, ErrMalformedCode).
var (
	// ErrGarbage: bytes that are no code, such as line noise, a baud rate
	// mismatch or a frame with unprintable bytes in it.
	ErrGarbage = errors.New("garbage on the scanner line")
	// ErrFrameTooLong: more than Framing.MaxLength bytes without a suffix.
	ErrFrameTooLong = errors.New("scan frame too long")
	// ErrPartialFrame: a frame started but its suffix never came (before
	// Framing.FrameTimeout of silence, or before the device went away).
	ErrPartialFrame = errors.New("partial scan frame")
	// ErrDisconnected: the device went away or could not be opened.
	// Disconnected events wrap it.
	ErrDisconnected = errors.New("device disconnected")
)

// frame is what the framer cuts from the byte stream: a complete frame
// (err nil), or bytes it gives up on (err set).
type frame struct {
	data []byte
	err  error
}

// framer cuts a scanner's byte stream into frames. It is a pure state
// machine: feed it what the port read, and tick it when a read timed out.
type framer struct {
	f          Framing
	term       byte // 0 for SuffixNone
	buf        []byte
	last       time.Time // when the last byte of buf (or of a dropped frame) came
	discarding bool      // dropping the rest of an over-long frame
	afterCR    bool      // the previous byte ended a frame with CR
}

func newFramer(f Framing) *framer {
	fr := &framer{f: f.withDefaults()}
	switch f.Suffix {
	case SuffixCR, SuffixCRLF:
		fr.term = '\r'
	case SuffixLF:
		fr.term = '\n'
	case SuffixTab:
		fr.term = '\t'
	}
	return fr
}

// feed takes bytes read at time now and returns the frames they complete.
func (fr *framer) feed(p []byte, now time.Time) []frame {
	var out []frame
	for _, c := range p {
		afterCR := fr.afterCR
		fr.afterCR = false
		fr.last = now
		if fr.term != 0 && c == fr.term {
			if fr.discarding {
				fr.discarding = false
			} else {
				data := fr.take()
				if c == '\n' && len(data) > 0 && data[len(data)-1] == '\r' {
					data = data[:len(data)-1] // CRLF sent to a scanner set to LF
				}
				if len(data) > 0 {
					out = append(out, frame{data: data})
				}
			}
			fr.afterCR = c == '\r'
			continue
		}
		if fr.discarding {
			continue
		}
		if c == '\n' && afterCR && len(fr.buf) == 0 {
			continue // the LF of a CRLF whose CR ended the frame
		}
		fr.buf = append(fr.buf, c)
		if len(fr.buf) > fr.f.MaxLength {
			out = append(out, frame{
				data: fr.take(),
				err:  fmt.Errorf("more than %d bytes without a %s suffix: %w", fr.f.MaxLength, fr.f.Suffix, ErrFrameTooLong),
			})
			fr.discarding = true
		}
	}
	return out
}

// tick ends what silence ends: a SuffixNone frame after IdleTimeout, a
// partial frame after FrameTimeout, the dropping of an over-long frame.
func (fr *framer) tick(now time.Time) []frame {
	idle := now.Sub(fr.last)
	if fr.discarding && idle >= fr.f.FrameTimeout || fr.term == 0 && fr.discarding && idle >= fr.f.IdleTimeout {
		fr.discarding = false
	}
	if len(fr.buf) == 0 {
		return nil
	}
	if fr.term == 0 {
		if idle >= fr.f.IdleTimeout {
			return []frame{{data: fr.take()}}
		}
		return nil
	}
	if idle >= fr.f.FrameTimeout {
		return []frame{{data: fr.take(), err: fmt.Errorf("no %s suffix after %v: %w", fr.f.Suffix, idle.Round(time.Millisecond), ErrPartialFrame)}}
	}
	return nil
}

// flush returns what is left when the device goes away: a frame for
// SuffixNone, a partial frame otherwise.
func (fr *framer) flush(cause error) []frame {
	fr.discarding = false
	if len(fr.buf) == 0 {
		return nil
	}
	if fr.term == 0 {
		return []frame{{data: fr.take()}}
	}
	return []frame{{data: fr.take(), err: fmt.Errorf("device went away mid-frame (%v): %w", cause, ErrPartialFrame)}}
}

func (fr *framer) take() []byte {
	if len(fr.buf) == 0 {
		return nil
	}
	data := make([]byte, len(fr.buf))
	copy(data, fr.buf)
	fr.buf = fr.buf[:0]
	return data
}
