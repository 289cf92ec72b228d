package devices

import (
	"errors"
	"fmt"
	"strings"
)

// Printer conditions. A print job that cannot go ahead fails with a
// *StatusError whose Unwrap yields every condition that holds, so
// errors.Is(err, ErrPaperOut) and errors.Is(err, ErrCoverOpen) both work
// when the cover is open on an empty roll.
var (
	// ErrPaperOut: the roll is empty (DLE EOT 4 bits 5-6, or DLE EOT 2
	// bit 5: printing stopped at paper end). Jobs wait in the queue.
	ErrPaperOut = errors.New("printer out of paper")
	// ErrCoverOpen: the printer cover is open (DLE EOT 2 bit 2). Jobs wait.
	ErrCoverOpen = errors.New("printer cover open")
	// ErrOffline: the printer says it is offline (DLE EOT 1 bit 3) for no
	// reason above (an error state, the feed button held, a recovery
	// pending). Jobs wait.
	ErrOffline = errors.New("printer offline")
	// ErrNoResponse: the printer did not answer a status request in time:
	// it is off, unplugged, or on the wrong port or baud rate. Jobs wait.
	ErrNoResponse = errors.New("printer does not respond")
	// ErrPaperNearEnd is a warning, not a failure: the roll is nearly empty
	// (DLE EOT 4 bits 2-3). Printing goes on; Status.Warning and
	// PrinterState.Warning return it so a clerk can change the roll in time.
	ErrPaperNearEnd = errors.New("printer paper near end")
)

// Status is a printer's real-time status, from DLE EOT 1, 2 and 4. Each
// answer byte has bits 1 and 4 set and bits 0 and 7 clear (0x12 with
// nothing to report).
type Status struct {
	Offline      bool // DLE EOT 1, bit 3
	CoverOpen    bool // DLE EOT 2, bit 2
	FeedButton   bool // DLE EOT 2, bit 3: paper being fed by the feed button
	PaperEndStop bool // DLE EOT 2, bit 5: printing stopped at paper end
	ErrorState   bool // DLE EOT 2, bit 6: an error occurred
	PaperNearEnd bool // DLE EOT 4, bits 2-3
	PaperOut     bool // DLE EOT 4, bits 5-6
	// Raw holds the three answer bytes (printer, offline cause, paper).
	Raw [3]byte
}

// Status answer bits.
const (
	statusFixed      = 0x12 // bits 1 and 4 always set
	statusFixedMask  = 0x93 // bits 0, 1, 4, 7: fixed
	stOffline        = 0x08 // n=1 bit 3
	stCoverOpen      = 0x04 // n=2 bit 2
	stFeedButton     = 0x08 // n=2 bit 3
	stPaperEndStop   = 0x20 // n=2 bit 5
	stErrorOccurred  = 0x40 // n=2 bit 6
	stPaperNearEnd   = 0x0c // n=4 bits 2-3
	stPaperNotThere  = 0x60 // n=4 bits 5-6
	paperSensorFixed = 0x90 // GS r 1 answer: bits 4 and 7 clear
)

// isStatusByte tells a DLE EOT answer from other bytes on the line.
func isStatusByte(b byte) bool { return b&statusFixedMask == statusFixed }

// isPaperSensorByte tells a GS r 1 answer (bits 4 and 7 clear) from a DLE
// EOT answer.
func isPaperSensorByte(b byte) bool { return b&paperSensorFixed == 0 }

// ParseStatus reads the answers to DLE EOT 1, 2 and 4.
func ParseStatus(printer, offline, paper byte) Status {
	return Status{
		Offline:      printer&stOffline != 0,
		CoverOpen:    offline&stCoverOpen != 0,
		FeedButton:   offline&stFeedButton != 0,
		PaperEndStop: offline&stPaperEndStop != 0,
		ErrorState:   offline&stErrorOccurred != 0,
		PaperNearEnd: paper&stPaperNearEnd != 0,
		PaperOut:     paper&stPaperNotThere != 0,
		Raw:          [3]byte{printer, offline, paper},
	}
}

// Err returns nil when a job can print, or a *StatusError naming every
// condition that stops it.
func (s Status) Err() error {
	var errs []error
	if s.CoverOpen {
		errs = append(errs, ErrCoverOpen)
	}
	if s.PaperOut || s.PaperEndStop {
		errs = append(errs, ErrPaperOut)
	}
	if len(errs) == 0 && (s.Offline || s.ErrorState) {
		errs = append(errs, ErrOffline)
	}
	if len(errs) == 0 {
		return nil
	}
	return &StatusError{Status: s, errs: errs}
}

// Warning returns ErrPaperNearEnd when the roll is nearly empty, else nil.
func (s Status) Warning() error {
	if s.PaperNearEnd && !s.PaperOut {
		return ErrPaperNearEnd
	}
	return nil
}

func (s Status) String() string {
	var parts []string
	add := func(on bool, name string) {
		if on {
			parts = append(parts, name)
		}
	}
	add(s.Offline, "offline")
	add(s.CoverOpen, "cover open")
	add(s.FeedButton, "feeding")
	add(s.PaperEndStop, "stopped at paper end")
	add(s.ErrorState, "error")
	add(s.PaperOut, "paper out")
	add(s.PaperNearEnd && !s.PaperOut, "paper near end")
	if len(parts) == 0 {
		return "ready"
	}
	return strings.Join(parts, ", ")
}

// StatusError is a print job refused or stopped by the printer's state.
// Op says when: "before job" (nothing was sent) or "during job" (some of
// it may be on paper).
type StatusError struct {
	Op     string
	Status Status
	errs   []error
}

func (e *StatusError) Error() string {
	msgs := make([]string, len(e.errs))
	for i, err := range e.errs {
		msgs[i] = err.Error()
	}
	op := ""
	if e.Op != "" {
		op = " " + e.Op
	}
	return fmt.Sprintf("printer%s: %s (status %s)", op, strings.Join(msgs, ", "), e.Status)
}

// Unwrap returns the conditions: ErrPaperOut, ErrCoverOpen, ErrOffline.
func (e *StatusError) Unwrap() []error { return e.errs }
