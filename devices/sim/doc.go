// Package sim simulates Endcap's store hardware on real pseudo-terminals,
// for tests, demos and cmd/devsim: a virtual barcode Scanner that sends
// codes framed as a serial scanner does, and a virtual ESC/POS receipt
// Printer that decodes what it is sent into receipts (Machine), renders
// them as text and PNG, and answers status requests from a state that can
// be switched to paper out, cover open or offline.
//
// The application opens a simulated device by its path (a symlink, like
// /dev/ttyUSB0) with the same tarm/serial code it uses for real hardware;
// Unplug and Replug remove the device and bring a new pty back behind the
// same path.
//
// The decoder is written from Epson's ESC/POS command reference, apart
// from package devices' encoder, and is tested against byte sequences
// taken from that reference. It imports package devices only for shared
// constants (framing, code pages, EAN check digits). Only tests and
// cmd/devsim import it; production code never does. Linux only: it uses
// creack/pty and termios ioctls.
package sim
