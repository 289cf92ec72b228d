package devices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// PrinterConfig configures a Printer.
type PrinterConfig struct {
	// Serial is the printer's port. Receipt printers commonly run at
	// 9600, 19200 or 38400 baud, 8N1.
	Serial SerialConfig
	// Open opens the device. Nil means OpenSerial(Serial).
	Open func(ctx context.Context) (Port, error)
	// QueueDir holds the durable print queue. Required.
	QueueDir string
	// Driver tunes status and job timeouts. Its ReadTimeout is taken from
	// Serial.
	Driver DriverConfig
	// RetryInterval is how often a waiting queue (paper out, cover open,
	// offline, no answer) checks the printer again. Kick checks at once.
	// Zero means 2s.
	RetryInterval time.Duration
	// IdlePoll is how often the printer's status is read while the queue
	// is empty, to keep State current. Zero means 10s; negative: never.
	IdlePoll time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts to reopen
	// a port that failed. Zero means 100ms and 5s.
	MinBackoff, MaxBackoff time.Duration
	// Now stamps queue entries and PrinterState.Checked. Nil means
	// time.Now. (Timeouts run on the real clock.)
	Now func() time.Time
	// Logger: nil means no logging.
	Logger *slog.Logger
}

// PrinterState is what a Printer knows of its printer, for a screen or a
// status page.
type PrinterState struct {
	// Connected: the port is open.
	Connected bool
	// Status is the last status read, at Checked.
	Status  Status
	Checked time.Time
	// Err is why jobs wait (a *StatusError wrapping ErrPaperOut,
	// ErrCoverOpen or ErrOffline; or ErrNoResponse, ErrDisconnected), nil
	// when the printer is ready.
	Err error
	// Warning is ErrPaperNearEnd when the roll is nearly empty.
	Warning error
	// Queued is the number of jobs waiting; Printed the number printed
	// since Run started.
	Queued  int
	Printed int
}

// Printer prints receipts from a durable queue on an ESC/POS printer.
// Enqueue puts a job on disk and returns; Run, in its own goroutine, prints
// the queue in order, each job confirmed by the printer before it leaves
// the queue. When the printer cannot print (paper out, cover open,
// offline, unplugged) jobs wait, State says why, and printing resumes by
// itself when the printer is ready again.
//
// A job that never gets confirmed blocks the jobs behind it until a clerk
// cancels it (Queue().Cancel). Methods are safe for concurrent use.
type Printer struct {
	cfg  PrinterConfig
	q    *Queue
	log  *slog.Logger
	kick chan struct{}

	mu    sync.Mutex
	state PrinterState
}

// NewPrinter opens the queue in cfg.QueueDir and returns a Printer. It
// does not open the port: Run does.
func NewPrinter(cfg PrinterConfig) (*Printer, error) {
	if cfg.QueueDir == "" {
		return nil, errors.New("printer: no queue directory")
	}
	if cfg.Open == nil {
		if err := cfg.Serial.Validate(); err != nil {
			return nil, fmt.Errorf("printer: %w", err)
		}
		sc := cfg.Serial
		cfg.Open = func(context.Context) (Port, error) { return OpenSerial(sc) }
	}
	cfg.Serial = cfg.Serial.withDefaults()
	cfg.Driver.ReadTimeout = cfg.Serial.ReadTimeout
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 2 * time.Second
	}
	if cfg.IdlePoll == 0 {
		cfg.IdlePoll = 10 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Second
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
	q, err := OpenQueue(cfg.QueueDir, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("printer: %w", err)
	}
	p := &Printer{cfg: cfg, q: q, log: log.With("device", cfg.Serial.Path), kick: make(chan struct{}, 1)}
	p.state.Queued, _ = q.Len()
	return p, nil
}

// Queue is the printer's durable queue.
func (p *Printer) Queue() *Queue { return p.q }

// Enqueue queues a job (see Queue.Enqueue) and wakes Run.
func (p *Printer) Enqueue(ctx context.Context, j Job) error {
	if err := p.q.Enqueue(ctx, j); err != nil {
		return err
	}
	p.updateQueued()
	p.Kick()
	return nil
}

// List returns the queued jobs, next to print first, without their data.
func (p *Printer) List() ([]Job, error) { return p.q.List() }

// Kick makes Run check the printer and the queue now rather than at its
// next retry (after a clerk changed the roll, say).
func (p *Printer) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// State returns what the Printer knows of its printer now.
func (p *Printer) State() PrinterState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

func (p *Printer) setState(f func(*PrinterState)) {
	p.mu.Lock()
	f(&p.state)
	p.mu.Unlock()
}

func (p *Printer) updateQueued() {
	n, err := p.q.Len()
	if err == nil {
		p.setState(func(s *PrinterState) { s.Queued = n })
	}
}

// wait waits d, a Kick, or the end of ctx; false when ctx is done.
func (p *Printer) wait(ctx context.Context, d time.Duration) bool {
	if d < 0 {
		select {
		case <-p.kick:
			return true
		case <-ctx.Done():
			return false
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.kick:
		return true
	case <-ctx.Done():
		return false
	}
}

// Run prints the queue until ctx is done, then closes the port and returns
// nil. Jobs not yet confirmed stay queued for the next Run. Run one at a
// time.
func (p *Printer) Run(ctx context.Context) error {
	var (
		port     Port
		drv      *Driver
		backoff  = p.cfg.MinBackoff
		lastPoll time.Time
	)
	closePort := func(cause error) {
		if port != nil {
			port.Close()
			port, drv = nil, nil
		}
		p.setState(func(s *PrinterState) { s.Connected, s.Err = false, cause })
	}
	defer func() {
		if port != nil {
			port.Close()
		}
		p.setState(func(s *PrinterState) { s.Connected = false })
	}()
	p.setState(func(s *PrinterState) { s.Printed = 0 })
	for ctx.Err() == nil {
		if port == nil {
			var err error
			port, err = p.cfg.Open(ctx)
			if err != nil {
				port = nil
				err = fmt.Errorf("%w: %w", ErrDisconnected, err)
				if !errors.Is(p.State().Err, ErrDisconnected) {
					p.log.Warn("printer unavailable", "err", err)
				}
				p.setState(func(s *PrinterState) { s.Connected, s.Err = false, err })
				if !p.wait(ctx, backoff) {
					break
				}
				backoff = min(2*backoff, p.cfg.MaxBackoff)
				continue
			}
			backoff = p.cfg.MinBackoff
			drv = NewDriver(port, p.cfg.Driver)
			p.log.Info("printer connected")
			p.setState(func(s *PrinterState) { s.Connected, s.Err = true, nil })
			lastPoll = time.Time{}
		}
		job, ok, err := p.q.Next()
		if err != nil {
			p.log.Error("print queue", "err", err)
			p.setState(func(s *PrinterState) { s.Err = err })
			if !p.wait(ctx, p.cfg.RetryInterval) {
				break
			}
			continue
		}
		if !ok {
			// Nothing to print: read the status now and then.
			if p.cfg.IdlePoll > 0 && time.Since(lastPoll) >= p.cfg.IdlePoll {
				lastPoll = time.Now()
				st, err := drv.Status(ctx)
				if ctx.Err() != nil {
					break
				}
				p.noteStatus(st, err)
				if err != nil {
					closePort(err)
					continue
				}
			}
			wait := p.cfg.IdlePoll
			if wait <= 0 {
				wait = -1
			}
			if !p.wait(ctx, wait) {
				break
			}
			continue
		}
		st, err := drv.Print(ctx, job.Data)
		if ctx.Err() != nil {
			break
		}
		lastPoll = time.Now()
		if err == nil {
			if err := p.q.Done(job.ID); err != nil {
				p.log.Error("print queue: done", "job", job.ID, "err", err)
			}
			p.log.Info("printed", "job", job.ID)
			p.noteStatus(st, nil)
			p.setState(func(s *PrinterState) { s.Printed++ })
			p.updateQueued()
			continue
		}
		p.log.Warn("print job waits", "job", job.ID, "err", err)
		if ferr := p.q.Failed(job.ID, err); ferr != nil {
			p.log.Error("print queue: record failure", "job", job.ID, "err", ferr)
		}
		p.noteStatus(st, err)
		if errors.Is(err, ErrDisconnected) || errors.Is(err, ErrNoResponse) {
			closePort(err)
		}
		if !p.wait(ctx, p.cfg.RetryInterval) {
			break
		}
	}
	return nil
}

// noteStatus records a status read (or the failure to read one).
func (p *Printer) noteStatus(st Status, err error) {
	p.setState(func(s *PrinterState) {
		if err != nil {
			s.Err = err
			var se *StatusError
			if errors.As(err, &se) {
				s.Status, s.Checked = se.Status, p.cfg.Now()
				s.Warning = se.Status.Warning()
			}
			return
		}
		s.Status, s.Checked = st, p.cfg.Now()
		s.Err, s.Warning = st.Err(), st.Warning()
	})
}
