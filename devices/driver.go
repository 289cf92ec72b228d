package devices

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// DriverConfig tunes a Driver. The zero value is ready for use.
type DriverConfig struct {
	// StatusTimeout bounds the wait for each status answer. Zero means 2s.
	StatusTimeout time.Duration
	// JobTimeout bounds the wait for a job to be confirmed printed while
	// the printer stays online. Zero means 60s.
	JobTimeout time.Duration
	// PollInterval is how often the driver asks for real-time status while
	// a job prints, to notice paper running out mid-job. Zero means 250ms.
	PollInterval time.Duration
	// ReadTimeout is the port's read timeout (SerialConfig.ReadTimeout),
	// used to tell a hung-up line from a quiet one. Zero means 100ms.
	ReadTimeout time.Duration
}

func (c DriverConfig) withDefaults() DriverConfig {
	if c.StatusTimeout <= 0 {
		c.StatusTimeout = 2 * time.Second
	}
	if c.JobTimeout <= 0 {
		c.JobTimeout = 60 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 100 * time.Millisecond
	}
	return c
}

// Driver talks ESC/POS to one receipt printer over an open Port: it asks
// for real-time status and prints jobs, confirming each was printed. It is
// not safe for concurrent use: one goroutine owns the port.
type Driver struct {
	port    Port
	cfg     DriverConfig
	r       portReader
	pending []byte
	tmp     []byte
}

// NewDriver returns a driver for an open port. Closing the port is the
// caller's business.
func NewDriver(port Port, cfg DriverConfig) *Driver {
	cfg = cfg.withDefaults()
	return &Driver{
		port: port,
		cfg:  cfg,
		r:    portReader{port: port, timeout: cfg.ReadTimeout},
		tmp:  make([]byte, 256),
	}
}

// errNoAnswer is a wait that timed out (the caller turns it into
// ErrNoResponse or a poll).
var errNoAnswer = errors.New("no answer")

// next returns the next byte from the printer, waiting until deadline.
func (d *Driver) next(ctx context.Context, deadline time.Time) (byte, error) {
	for {
		if len(d.pending) > 0 {
			b := d.pending[0]
			d.pending = d.pending[1:]
			return b, nil
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if !time.Now().Before(deadline) {
			return 0, errNoAnswer
		}
		n, err := d.r.read(d.tmp)
		if n > 0 {
			d.pending = append(d.pending, d.tmp[:n]...)
			continue
		}
		if err != nil && !errors.Is(err, errNoData) {
			return 0, fmt.Errorf("%w: %w", ErrDisconnected, err)
		}
	}
}

func (d *Driver) write(ctx context.Context, p []byte) error {
	const chunk = 1024
	for len(p) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(chunk, len(p))
		if _, err := d.port.Write(p[:n]); err != nil {
			return fmt.Errorf("%w: write: %w", ErrDisconnected, err)
		}
		p = p[n:]
	}
	return nil
}

// discardInput drops bytes the printer sent that nobody asked for (late
// answers to an earlier request), so they are not taken for answers now.
func (d *Driver) discardInput() {
	d.pending = d.pending[:0]
	if f, ok := d.port.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
}

// statusByte sends DLE EOT n and waits for its answer.
func (d *Driver) statusByte(ctx context.Context, cmd []byte) (byte, error) {
	if err := d.write(ctx, cmd); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(d.cfg.StatusTimeout)
	for {
		b, err := d.next(ctx, deadline)
		if errors.Is(err, errNoAnswer) {
			return 0, fmt.Errorf("status request % x: no answer in %v: %w", cmd, d.cfg.StatusTimeout, ErrNoResponse)
		}
		if err != nil {
			return 0, err
		}
		if isStatusByte(b) {
			return b, nil
		}
	}
}

// Status asks the printer for its real-time status (DLE EOT 1, 2 and 4).
// Printers answer these even when offline. The error is ErrNoResponse
// when it does not answer, ErrDisconnected when the port failed, or the
// context's error.
func (d *Driver) Status(ctx context.Context) (Status, error) {
	var raw [3]byte
	for i, cmd := range [][]byte{cmdStatusPrinter, cmdStatusOffline, cmdStatusPaper} {
		b, err := d.statusByte(ctx, cmd)
		if err != nil {
			return Status{}, err
		}
		raw[i] = b
	}
	return ParseStatus(raw[0], raw[1], raw[2]), nil
}

// Print prints one job and returns once the printer confirmed it printed.
//
// It checks the status first: if the printer cannot print, nothing is
// sent and the error is a *StatusError ("before job"). Then it sends the
// job followed by GS r 1, whose answer the printer sends only after it
// has printed everything before it (real-time DLE EOT answers, by
// contrast, come at once, before buffered data is printed). While it
// waits it polls DLE EOT 1 every PollInterval: when the printer goes
// offline mid-job (paper out, cover opened) Print returns a *StatusError
// ("during job"), and some of the job may be on paper. When the job is
// confirmed, Print returns the status after it with a nil error, even if
// that status is now paper out: the job itself is printed.
//
// ErrNoResponse means the printer fell silent (confirmation or status
// never came); ErrDisconnected that the port failed. In both cases the
// job may or may not have printed.
func (d *Driver) Print(ctx context.Context, job []byte) (Status, error) {
	d.discardInput()
	st, err := d.Status(ctx)
	if err != nil {
		return st, err
	}
	if err := st.Err(); err != nil {
		err.(*StatusError).Op = "before job"
		return st, err
	}
	if err := d.write(ctx, job); err != nil {
		return st, err
	}
	if err := d.write(ctx, cmdPaperSensor); err != nil {
		return st, err
	}
	deadline := time.Now().Add(d.cfg.JobTimeout)
	polling := false // a DLE EOT 1 is out and not answered yet
	for {
		wait := time.Now().Add(d.cfg.PollInterval)
		if polling {
			wait = time.Now().Add(d.cfg.StatusTimeout)
		}
		if deadline.Before(wait) {
			wait = deadline
		}
		b, err := d.next(ctx, wait)
		switch {
		case errors.Is(err, errNoAnswer):
			if !time.Now().Before(deadline) {
				return st, fmt.Errorf("job not confirmed within %v: %w", d.cfg.JobTimeout, ErrNoResponse)
			}
			if polling {
				return st, fmt.Errorf("status poll during job: no answer in %v: %w", d.cfg.StatusTimeout, ErrNoResponse)
			}
			if err := d.write(ctx, cmdStatusPrinter); err != nil {
				return st, err
			}
			polling = true
			continue
		case err != nil:
			return st, err
		}
		switch {
		case isPaperSensorByte(b):
			// Confirmed: everything before GS r 1 is on paper. Drain the
			// answer to a poll still on its way, then read the status.
			if polling {
				if _, err := d.waitStatusByte(ctx); err != nil {
					return st, nil
				}
			}
			after, err := d.Status(ctx)
			if err != nil {
				return st, nil // printed; the status can wait
			}
			return after, nil
		case isStatusByte(b):
			polling = false
			if b&stOffline == 0 {
				continue
			}
			now, err := d.Status(ctx)
			if err != nil {
				return st, err
			}
			if err := now.Err(); err != nil {
				err.(*StatusError).Op = "during job"
				return now, err
			}
			// Offline for a moment (the feed button): keep waiting.
		}
	}
}

func (d *Driver) waitStatusByte(ctx context.Context) (byte, error) {
	deadline := time.Now().Add(d.cfg.StatusTimeout)
	for {
		b, err := d.next(ctx, deadline)
		if err != nil {
			return 0, err
		}
		if isStatusByte(b) {
			return b, nil
		}
	}
}
