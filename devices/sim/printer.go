package sim

import (
	"sync"
)

// PrinterOptions configure a virtual printer.
type PrinterOptions struct {
	// Link is the path the application opens (a symlink to the pty);
	// empty means none (open the pty slave, Path).
	Link string
	// Columns of Font A across the paper. Zero means 48 (80 mm).
	Columns int
	// OnReceipt, if set, is called with each receipt as it leaves the
	// printer (cut, or torn when the paper ran out), from the printer's
	// goroutine: it must not call the Printer's methods that change state.
	OnReceipt func(*Receipt)
}

// Printer is a virtual ESC/POS receipt printer on a pseudo-terminal: it
// decodes what the application sends (a Machine), keeps the receipts it
// printed, and answers status requests from its state, which the test or
// the operator changes (paper out, cover open, offline). Methods are safe
// for concurrent use.
type Printer struct {
	dev  *Device
	opts PrinterOptions

	mu  sync.Mutex
	m   *Machine
	all []*Receipt
	wg  sync.WaitGroup
}

// NewPrinter starts a virtual printer; Close stops it.
func NewPrinter(opts PrinterOptions) (*Printer, error) {
	dev, err := NewDevice(opts.Link)
	if err != nil {
		return nil, err
	}
	p := &Printer{dev: dev, opts: opts, m: NewMachine(opts.Columns)}
	p.start()
	return p, nil
}

func (p *Printer) start() {
	master, err := p.dev.Master()
	if err != nil {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			if n > 0 {
				reply, done := p.feed(buf[:n])
				if len(reply) > 0 {
					master.Write(reply)
				}
				if p.opts.OnReceipt != nil {
					for _, r := range done {
						p.opts.OnReceipt(r)
					}
				}
			}
			if err != nil {
				return // closed: unplugged or stopped
			}
		}
	}()
}

func (p *Printer) feed(b []byte) (reply []byte, done []*Receipt) {
	p.mu.Lock()
	defer p.mu.Unlock()
	reply = p.m.Write(b)
	return reply, p.collect()
}

// collect moves receipts the machine finished into all; p.mu held.
func (p *Printer) collect() []*Receipt {
	done := p.m.TakeReceipts()
	for _, r := range done {
		p.all = append(p.all, r.clone())
	}
	return done
}

func (p *Printer) change(f func(m *Machine)) {
	p.mu.Lock()
	f(p.m)
	done := p.collect()
	p.mu.Unlock()
	if p.opts.OnReceipt != nil {
		for _, r := range done {
			p.opts.OnReceipt(r)
		}
	}
}

// Path is what the application opens.
func (p *Printer) Path() string { return p.dev.Path() }

// TTY is the pty slave behind Path.
func (p *Printer) TTY() string { return p.dev.TTY() }

// Columns is the paper width in Font A columns.
func (p *Printer) Columns() int { return p.m.columns() }

// SetPaperOut empties the roll or loads a new one.
func (p *Printer) SetPaperOut(out bool) { p.change(func(m *Machine) { m.SetPaperOut(out) }) }

// SetPaperNearEnd sets the near-end sensor.
func (p *Printer) SetPaperNearEnd(near bool) { p.change(func(m *Machine) { m.PaperNearEnd = near }) }

// SetCoverOpen opens or shuts the cover.
func (p *Printer) SetCoverOpen(open bool) { p.change(func(m *Machine) { m.SetCoverOpen(open) }) }

// SetOffline takes the printer offline or back online.
func (p *Printer) SetOffline(off bool) { p.change(func(m *Machine) { m.SetOffline(off) }) }

// PaperOutAfter makes the roll run out after n more items (lines,
// barcodes): the next job tears there. Negative means unlimited paper.
func (p *Printer) PaperOutAfter(n int) { p.change(func(m *Machine) { m.PaperLeft = n }) }

// State reports paper out, near end, cover open and offline.
func (p *Printer) State() (paperOut, nearEnd, coverOpen, offline bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m.PaperOut, p.m.PaperNearEnd, p.m.CoverOpen, p.m.Offline
}

// StatusBytes are what the printer answers to DLE EOT 1, 2, 3 and 4 now.
func (p *Printer) StatusBytes() [4]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [4]byte
	for i := range out {
		out[i], _ = p.m.StatusByte(byte(i + 1))
	}
	return out
}

// Receipts returns every receipt printed since the start, oldest first.
func (p *Printer) Receipts() []*Receipt {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Receipt, len(p.all))
	for i, r := range p.all {
		out[i] = r.clone()
	}
	return out
}

// Current returns the receipt being printed, or nil.
func (p *Printer) Current() *Receipt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m.Current()
}

// Unknown returns the commands the printer did not understand.
func (p *Printer) Unknown() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.m.Unknown...)
}

// Received is the number of bytes received.
func (p *Printer) Received() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m.Received
}

// Unplug pulls the printer's cable: the link goes, the application's
// port hangs up. State and paper are kept.
func (p *Printer) Unplug() error {
	err := p.dev.Unplug()
	p.wg.Wait()
	return err
}

// Replug plugs it back in behind the same link.
func (p *Printer) Replug() error {
	if err := p.dev.Replug(); err != nil {
		return err
	}
	p.start()
	return nil
}

// Close stops the printer and removes its link.
func (p *Printer) Close() error {
	err := p.dev.Close()
	p.wg.Wait()
	return err
}
