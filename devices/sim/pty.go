package sim

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ErrUnplugged: the device is unplugged (Write, Master).
var ErrUnplugged = errors.New("device unplugged")

// Device is a pseudo-terminal standing in for a serial device. The
// application opens Path, exactly as it would open /dev/ttyUSB0 (through
// tarm/serial); the simulator reads and writes the master side.
//
// With a link path, Path is a symbolic link to the pty's slave
// (/dev/pts/N) that Unplug removes and Replug points at a new pty, as a
// USB adapter's /dev/ttyUSB0 disappears and comes back. Methods are safe
// for concurrent use.
type Device struct {
	link string

	mu     sync.Mutex
	master *os.File // nil when unplugged
	slave  *os.File // kept open so the master never sees a hang-up
	tty    string
}

// NewDevice creates a pty (and the link to it, when link is not empty; an
// existing link is replaced).
func NewDevice(link string) (*Device, error) {
	d := &Device{link: link}
	if err := d.plug(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Device) plug() error {
	m, s, err := pty.Open()
	if err != nil {
		return fmt.Errorf("open pty: %w", err)
	}
	// creack/pty leaves the master in blocking mode, so a Read would not
	// end when the master is closed. Reopen its descriptor non-blocking:
	// os.NewFile then registers it with the runtime poller, and Close
	// interrupts a pending Read.
	fd, err := unix.Dup(int(m.Fd()))
	m.Close()
	if err != nil {
		s.Close()
		return fmt.Errorf("pty: dup master: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		s.Close()
		return fmt.Errorf("pty: master non-blocking: %w", err)
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := makeRaw(s); err != nil {
		master.Close()
		s.Close()
		return err
	}
	if d.link != "" {
		tmp := d.link + ".new"
		os.Remove(tmp)
		err := os.Symlink(s.Name(), tmp)
		if err == nil {
			err = os.Rename(tmp, d.link)
		}
		if err != nil {
			master.Close()
			s.Close()
			return fmt.Errorf("pty: link %s: %w", d.link, err)
		}
	}
	d.master, d.slave, d.tty = master, s, s.Name()
	return nil
}

// makeRaw puts the slave in raw mode (no echo, no line editing, no CR/LF
// translation, 8 bits), so bytes pass as on a serial line even before the
// application opens it and sets its own modes.
func makeRaw(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	err = sc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			ierr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		ierr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	if err == nil {
		err = ierr
	}
	if err != nil {
		return fmt.Errorf("pty: raw mode: %w", err)
	}
	return nil
}

// Path is what the application opens: the link, or the pty slave.
func (d *Device) Path() string {
	if d.link != "" {
		return d.link
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.tty
}

// TTY is the current pty slave (/dev/pts/N); empty when unplugged.
func (d *Device) TTY() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.master == nil {
		return ""
	}
	return d.tty
}

// Master returns the current master side, or ErrUnplugged.
func (d *Device) Master() (*os.File, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.master == nil {
		return nil, ErrUnplugged
	}
	return d.master, nil
}

// Write sends bytes to the application, in one write.
func (d *Device) Write(p []byte) (int, error) {
	m, err := d.Master()
	if err != nil {
		return 0, err
	}
	return m.Write(p)
}

// Unread is the number of bytes sent to the application that it has not
// read yet.
func (d *Device) Unread() (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.slave == nil {
		return 0, ErrUnplugged
	}
	sc, err := d.slave.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ierr error
	if err := sc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.TIOCINQ) }); err != nil {
		return 0, err
	}
	return n, ierr
}

// Plugged reports whether the device is plugged in.
func (d *Device) Plugged() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.master != nil
}

// Unplug removes the link and closes the pty: the application's reads and
// writes fail (a hang-up), as when a USB adapter is pulled.
func (d *Device) Unplug() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.unplugLocked()
}

func (d *Device) unplugLocked() error {
	if d.master == nil {
		return nil
	}
	if d.link != "" {
		os.Remove(d.link)
	}
	err := errors.Join(d.master.Close(), d.slave.Close())
	d.master, d.slave = nil, nil
	return err
}

// Replug plugs a new pty in behind the same link.
func (d *Device) Replug() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.master != nil {
		return nil
	}
	return d.plug()
}

// Close unplugs the device for good.
func (d *Device) Close() error { return d.Unplug() }
