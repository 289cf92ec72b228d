// Package devices drives Endcap's store hardware over serial ports: barcode
// scanners and ESC/POS receipt printers, through github.com/tarm/serial on
// a real port (/dev/ttyUSB0, /dev/ttyS0) or a pseudo-terminal (package
// devices/sim, cmd/devsim).
//
// Scanning: a Scanner opens its port, cuts what the scanner sends into
// frames (Framing: prefix, suffix or idle timeout, AIM symbology
// identifiers), validates and classifies each code (Classify: EAN-13,
// EAN-8, UPC-A check digits; Endcap's loyalty cards, coupons and app
// sign-in tokens) and delivers Events. Noise, bad check digits, partial and
// over-long frames are error events carrying the raw bytes; a device that
// disappears is reported and reopened by path when it comes back.
//
// Printing: a Builder writes ESC/POS; the receipt templates (SaleReceipt,
// ReturnReceipt, OrderReceipt, CouponSlip) lay out plain structs the edge
// fills in. A Printer keeps jobs in a durable Queue (a directory) and prints
// them in order through a Driver, which reads the printer's real-time
// status (DLE EOT) before each job and has the printer confirm the job
// printed (GS r 1) before the job leaves the queue: paper out, cover open
// and offline wait in the queue (ErrPaperOut, ErrCoverOpen, ErrOffline),
// paper near end is a warning (ErrPaperNearEnd).
//
// Device code depends on the Port interface (an io.ReadWriteCloser with
// tarm/serial's read-timeout semantics), not on *serial.Port, so the same
// code runs on a serial port, a pty or a recorded byte stream.
//
// This package imports nothing else of Endcap's: it deals in scans, bytes
// and print jobs, and the edge maps its records onto the template structs.
// It uses no cgo. docs/devices.md is the operator's guide.
package devices
