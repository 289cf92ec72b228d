package devices

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tarm/serial"
)

// Port is what scanners and printers talk through: a serial port, a
// pseudo-terminal, or a recorded byte stream in a test.
//
// Read follows github.com/tarm/serial with a read timeout: it waits at most
// about the configured read timeout and returns (0, io.EOF) when nothing
// came, which means "no data yet", not end of stream. Read must not block
// for ever (Close may wait for a pending Read).
//
// A Port may also have these methods, found by type assertion:
//
//	Alive() error // non-nil once the device is known to be gone (unplugged)
//	Flush() error // drop bytes received but not read yet
type Port interface {
	io.ReadWriteCloser
}

// Parity of a serial line.
type Parity byte

// Parities tarm/serial supports. The zero value means ParityNone.
const (
	ParityNone Parity = 'N'
	ParityOdd  Parity = 'O'
	ParityEven Parity = 'E'
)

// ParseParity reads a parity as configuration spells it: none, odd, even
// (or N, O, E).
func ParseParity(s string) (Parity, error) {
	switch strings.ToLower(s) {
	case "", "n", "none":
		return ParityNone, nil
	case "o", "odd":
		return ParityOdd, nil
	case "e", "even":
		return ParityEven, nil
	}
	return 0, fmt.Errorf("unknown parity %q (want none, odd or even)", s)
}

// SerialConfig says which serial port to open and how. The zero value of
// every field but Path is usable: 9600 baud, 8 data bits, no parity, 1 stop
// bit, 100 ms read timeout.
type SerialConfig struct {
	// Path of the device: /dev/ttyUSB0, /dev/ttyS0, a stable udev name
	// (/dev/serial/by-id/...), or a pseudo-terminal (a devsim link).
	Path string
	// Baud is the line speed: a standard rate (1200, 2400, 4800, 9600,
	// 19200, 38400, 57600, 115200, 230400, ...). Zero means 9600.
	Baud int
	// DataBits is 5 to 8. Zero means 8.
	DataBits int
	// Parity: zero means ParityNone.
	Parity Parity
	// StopBits is 1 or 2. Zero means 1.
	StopBits int
	// ReadTimeout bounds each read. It has 100 ms steps (rounded down, at
	// least 100 ms, at most 25.5 s). Zero means 100 ms. It must not be
	// zero underneath: tarm/serial's Close hangs behind a read that waits
	// for ever.
	ReadTimeout time.Duration
}

var standardBauds = []int{50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600,
	19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000,
	1500000, 2000000, 2500000, 3000000, 3500000, 4000000}

func (c SerialConfig) withDefaults() SerialConfig {
	if c.Baud == 0 {
		c.Baud = 9600
	}
	if c.DataBits == 0 {
		c.DataBits = 8
	}
	if c.Parity == 0 {
		c.Parity = ParityNone
	}
	if c.StopBits == 0 {
		c.StopBits = 1
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 100 * time.Millisecond
	}
	if c.ReadTimeout < 100*time.Millisecond {
		c.ReadTimeout = 100 * time.Millisecond
	}
	return c
}

// Validate reports a configuration tarm/serial cannot open.
func (c SerialConfig) Validate() error {
	c = c.withDefaults()
	if c.Path == "" {
		return errors.New("serial: no device path")
	}
	std := false
	for _, b := range standardBauds {
		std = std || b == c.Baud
	}
	if !std {
		return fmt.Errorf("serial %s: %d baud is not a standard rate", c.Path, c.Baud)
	}
	if c.DataBits < 5 || c.DataBits > 8 {
		return fmt.Errorf("serial %s: %d data bits (want 5 to 8)", c.Path, c.DataBits)
	}
	switch c.Parity {
	case ParityNone, ParityOdd, ParityEven:
	default:
		return fmt.Errorf("serial %s: parity %q not supported (want N, O or E)", c.Path, rune(c.Parity))
	}
	if c.StopBits != 1 && c.StopBits != 2 {
		return fmt.Errorf("serial %s: %d stop bits (want 1 or 2)", c.Path, c.StopBits)
	}
	return nil
}

// OpenSerial opens a serial port (or a pseudo-terminal) with
// github.com/tarm/serial. The Port it returns has Alive, which notices the
// device path disappearing or pointing at another device (an unplugged USB
// adapter, a devsim device replugged), and Flush.
func OpenSerial(c SerialConfig) (Port, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	p, err := serial.OpenPort(&serial.Config{
		Name:        c.Path,
		Baud:        c.Baud,
		Size:        byte(c.DataBits),
		Parity:      serial.Parity(c.Parity),
		StopBits:    serial.StopBits(c.StopBits),
		ReadTimeout: c.ReadTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("open serial %s: %w", c.Path, err)
	}
	fi, err := os.Stat(c.Path)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("open serial %s: %w", c.Path, err)
	}
	return &serialPort{Port: p, path: c.Path, fi: fi}, nil
}

var _ Port = (*serialPort)(nil)

type serialPort struct {
	*serial.Port
	path string
	fi   os.FileInfo
}

// Alive reports the device gone when its path no longer leads to the
// device that was opened.
func (p *serialPort) Alive() error {
	fi, err := os.Stat(p.path)
	if err != nil {
		return fmt.Errorf("serial %s: %w", p.path, err)
	}
	if !os.SameFile(fi, p.fi) {
		return fmt.Errorf("serial %s now leads to another device", p.path)
	}
	return nil
}

// errNoData is a read that timed out with nothing.
var errNoData = errors.New("no data")

// portReader reads a Port the tarm/serial way and tells "nothing yet" from
// "the device is gone". On Linux a tty whose other end hung up (a pty
// whose master closed, a USB adapter pulled) reads as (0, EOF) at once, the
// same answer as a timeout, only immediately; so three empty reads in a row
// that return well before the read timeout mean a hang-up.
type portReader struct {
	port    Port
	timeout time.Duration
	fast    int
}

const hangupFastReads = 3

func (r *portReader) read(p []byte) (int, error) {
	start := time.Now()
	n, err := r.port.Read(p)
	if n > 0 {
		r.fast = 0
		return n, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	if time.Since(start) < r.timeout/4 {
		r.fast++
		if r.fast >= hangupFastReads {
			return 0, errors.New("the line hung up (reads return at once with nothing)")
		}
	} else {
		r.fast = 0
	}
	if a, ok := r.port.(interface{ Alive() error }); ok {
		if err := a.Alive(); err != nil {
			return 0, err
		}
	}
	return 0, errNoData
}

// sleepCtx waits d or until ctx is done; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
