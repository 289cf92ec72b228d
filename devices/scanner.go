package devices

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// EventType says what a scanner Event reports.
type EventType int

// Scanner event types.
const (
	EventScan         EventType = iota + 1 // a code was read (Code, Kind, Symbology)
	EventError                             // bytes that were no usable code (Raw, Err)
	EventConnected                         // the device was opened (again)
	EventDisconnected                      // the device went away or could not be opened (Err)
)

func (t EventType) String() string {
	switch t {
	case EventScan:
		return "scan"
	case EventError:
		return "error"
	case EventConnected:
		return "connected"
	case EventDisconnected:
		return "disconnected"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is what a Scanner delivers.
type Event struct {
	Type EventType
	// Time is when the frame's last byte was read (by ScannerConfig.Now).
	Time time.Time
	// Code is the scanned data without prefix, AIM identifier and suffix.
	// Set for scans, and for error events about a code that read but did
	// not validate (a check digit failure).
	Code string
	// Kind is the code's kind (Classify). For error events about a code,
	// the kind it looked like.
	Kind Kind
	// Symbology and AIM are what the scanner reported ("]E0" → SymEAN13);
	// SymUnknown and "" when it sends no AIM identifier.
	Symbology Symbology
	AIM       string
	// Raw is the frame as received, prefix and AIM identifier included
	// (suffix excluded). For error events, the offending bytes.
	Raw []byte
	// Err is why an error or disconnected event happened. It wraps one of
	// ErrGarbage, ErrFrameTooLong, ErrPartialFrame, ErrCheckDigit,
	// ErrMalformedCode or ErrDisconnected.
	Err error
	// Device is the device path (ScannerConfig.Serial.Path).
	Device string
}

// ScannerConfig configures a Scanner.
type ScannerConfig struct {
	// Serial is the port to open. Its Path is also what disconnect events
	// name.
	Serial SerialConfig
	// Framing is how the scanner frames codes.
	Framing Framing
	// Open opens the device. Nil means OpenSerial(Serial). Tests and
	// recorded streams put their own here.
	Open func(ctx context.Context) (Port, error)
	// MinBackoff and MaxBackoff bound the wait between attempts to reopen a
	// device that is gone. Zero means 50ms and 2s.
	MinBackoff, MaxBackoff time.Duration
	// Now stamps events. Nil means time.Now. (Framing timeouts run on the
	// real clock.)
	Now func() time.Time
	// Logger: nil means no logging.
	Logger *slog.Logger
}

// Scanner reads a serial barcode scanner and turns what it sends into
// Events. It owns its device while Run runs, and reopens it by path when it
// goes away. Its methods are safe for concurrent use; Run is meant to be
// called once at a time.
type Scanner struct {
	cfg ScannerConfig
	log *slog.Logger
}

// NewScanner checks cfg and returns a Scanner. It opens nothing: Run does.
func NewScanner(cfg ScannerConfig) (*Scanner, error) {
	if cfg.Open == nil {
		if err := cfg.Serial.Validate(); err != nil {
			return nil, fmt.Errorf("scanner: %w", err)
		}
		sc := cfg.Serial
		cfg.Open = func(context.Context) (Port, error) { return OpenSerial(sc) }
	}
	if err := cfg.Framing.validate(); err != nil {
		return nil, fmt.Errorf("scanner: %w", err)
	}
	cfg.Serial = cfg.Serial.withDefaults()
	cfg.Framing = cfg.Framing.withDefaults()
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 50 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 2 * time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scanner{cfg: cfg, log: log.With("device", cfg.Serial.Path)}, nil
}

// Run opens the device and sends an Event on events for everything that
// happens until ctx is done; then it closes the device and returns nil.
// A device that cannot be opened, or goes away, is reported once
// (EventDisconnected) and reopened with backoff; EventConnected follows
// when it is back. Run blocks on a full events channel (until ctx is done),
// so scans are never dropped: the consumer should keep up.
func (s *Scanner) Run(ctx context.Context, events chan<- Event) error {
	backoff := s.cfg.MinBackoff
	down := false // a disconnected event was sent and no connect since
	for ctx.Err() == nil {
		port, err := s.cfg.Open(ctx)
		if err != nil {
			if !down {
				s.log.Warn("scanner unavailable", "err", err)
				s.send(ctx, events, Event{Type: EventDisconnected, Err: fmt.Errorf("%w: %w", ErrDisconnected, err)})
				down = true
			}
			if !sleepCtx(ctx, backoff) {
				break
			}
			backoff = min(2*backoff, s.cfg.MaxBackoff)
			continue
		}
		backoff, down = s.cfg.MinBackoff, false
		s.log.Info("scanner connected")
		s.send(ctx, events, Event{Type: EventConnected})
		err = s.read(ctx, port, events)
		port.Close()
		if ctx.Err() != nil {
			break
		}
		s.log.Warn("scanner disconnected", "err", err)
		s.send(ctx, events, Event{Type: EventDisconnected, Err: fmt.Errorf("%w: %w", ErrDisconnected, err)})
		down = true
	}
	return nil
}

// read reads port until ctx is done (nil) or the device goes away.
func (s *Scanner) read(ctx context.Context, port Port, events chan<- Event) error {
	r := &portReader{port: port, timeout: s.cfg.Serial.ReadTimeout}
	fr := newFramer(s.cfg.Framing)
	buf := make([]byte, 4096)
	for ctx.Err() == nil {
		n, err := r.read(buf)
		now := time.Now()
		var frames []frame
		if n > 0 {
			frames = fr.feed(buf[:n], now)
		}
		switch {
		case err == nil || errors.Is(err, errNoData):
			frames = append(frames, fr.tick(now)...)
		default:
			frames = append(frames, fr.flush(err)...)
		}
		for _, f := range frames {
			for _, ev := range s.decode(f) {
				s.send(ctx, events, ev)
			}
		}
		if err != nil && !errors.Is(err, errNoData) {
			return err
		}
	}
	return nil
}

func (s *Scanner) send(ctx context.Context, events chan<- Event, ev Event) {
	if ev.Time.IsZero() {
		ev.Time = s.cfg.Now()
	}
	ev.Device = s.cfg.Serial.Path
	select {
	case events <- ev:
	case <-ctx.Done():
	}
}

// decode turns one frame into events: an error for noise before the code,
// and a scan or an error for the code.
func (s *Scanner) decode(f frame) []Event {
	at := s.cfg.Now()
	if f.err != nil {
		return []Event{{Type: EventError, Time: at, Raw: f.data, Err: f.err}}
	}
	return decodeFrame(s.cfg.Framing, f.data, at)
}

// decodeFrame is the scanner's frame decoder, apart from any port.
func decodeFrame(fc Framing, data []byte, at time.Time) []Event {
	var out []Event
	garbage := func(raw []byte, why string) {
		out = append(out, Event{Type: EventError, Time: at, Raw: raw, Err: fmt.Errorf("%s: %w", why, ErrGarbage)})
	}
	// Noise before the code: bytes before the prefix, or unprintable bytes.
	start := 0
	if fc.Prefix != "" {
		i := bytes.Index(data, []byte(fc.Prefix))
		if i < 0 {
			garbage(data, fmt.Sprintf("no %q prefix", fc.Prefix))
			return out
		}
		start = i
	} else {
		for start < len(data) && !printable(data[start]) {
			start++
		}
	}
	if start > 0 {
		garbage(data[:start], fmt.Sprintf("%d bytes of noise", start))
	}
	raw := data[start:]
	if len(raw) == 0 {
		return out
	}
	body := raw[len(fc.Prefix):]
	ev := Event{Type: EventScan, Time: at, Raw: raw}
	if fc.AIM {
		if id, sym, rest, ok := ParseAIM(body); ok {
			ev.AIM, ev.Symbology, body = id, sym, rest
		}
	}
	for i, c := range body {
		if !printable(c) && c != gs1Separator {
			garbage(raw, fmt.Sprintf("unprintable byte 0x%02x at %d", c, i))
			return out
		}
	}
	if len(body) == 0 {
		garbage(raw, "frame holds no code")
		return out
	}
	ev.Code = string(body)
	kind, err := ClassifySymbology(ev.Code, ev.Symbology)
	ev.Kind = kind
	if err != nil {
		ev.Type, ev.Err = EventError, err
	}
	return append(out, ev)
}
