package devices_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/endcap/endcap/devices"
	"github.com/endcap/endcap/devices/sim"
)

// Codes used across the scanner tests; each is valid.
const (
	ean13   = "4006381333931"
	ean8    = "96385074"
	upcA    = "036000291452"
	code128 = "ORD-S7-000123"
	coupon  = "CPN-MFRGGZDFMZTWQ2LK"
	signIn  = "ECSI:dG9rZW4tZm9yLWphbmU.x9_Qv-2"
)

func loyalty(tb testing.TB) string {
	tb.Helper()
	c, err := devices.LoyaltyCode("123456789")
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// transport is how a scan test reaches a Scanner: a virtual scanner on a
// pty read through tarm/serial, or a recorded byte stream.
type transport struct {
	name  string
	start func(tb testing.TB, f devices.Framing) (send func([]byte), events chan devices.Event)
}

var transports = []transport{
	{"pty", func(tb testing.TB, f devices.Framing) (func([]byte), chan devices.Event) {
		rig := startScanRig(tb, f)
		return func(b []byte) {
			if err := rig.sim.Send(b); err != nil {
				tb.Fatal(err)
			}
		}, rig.events
	}},
	{"recorded", func(tb testing.TB, f devices.Framing) (func([]byte), chan devices.Event) {
		port := newRecordedPort()
		events := make(chan devices.Event, 64)
		opened := false
		runScanner(tb, devices.ScannerConfig{
			Serial:  devices.SerialConfig{Path: "recorded"},
			Framing: f,
			Open: func(context.Context) (devices.Port, error) {
				if opened {
					return nil, errors.New("recording ended")
				}
				opened = true
				return port, nil
			},
		}, events)
		if ev := nextEvent(tb, events); ev.Type != devices.EventConnected {
			tb.Fatalf("first event %v, want connected", ev.Type)
		}
		return port.send, events
	}},
}

var framings = []struct {
	name string
	f    devices.Framing
}{
	{"cr", devices.Framing{Suffix: devices.SuffixCR}},
	{"lf", devices.Framing{Suffix: devices.SuffixLF}},
	{"crlf", devices.Framing{Suffix: devices.SuffixCRLF}},
	{"tab", devices.Framing{Suffix: devices.SuffixTab}},
	{"none-idle", devices.Framing{Suffix: devices.SuffixNone}},
	{"stx-prefix-cr", devices.Framing{Prefix: "\x02", Suffix: devices.SuffixCR}},
	{"aim-crlf", devices.Framing{Suffix: devices.SuffixCRLF, AIM: true}},
}

// frameFor is what a scanner set to f sends for code.
func frameFor(f devices.Framing, aim, code string) []byte {
	var b []byte
	b = append(b, f.Prefix...)
	if f.AIM {
		b = append(b, aim...)
	}
	b = append(b, code...)
	return append(b, f.Suffix.Bytes()...)
}

// TestScanSymbologies sends every kind of code in every framing, through
// every transport, and checks the events.
func TestScanSymbologies(t *testing.T) {
	lc := loyalty(t)
	codes := []struct {
		aim  string
		code string
		kind devices.Kind
		sym  devices.Symbology // with AIM on
	}{
		{"]E0", ean13, devices.KindEAN13, devices.SymEAN13},
		{"]E4", ean8, devices.KindEAN8, devices.SymEAN8},
		{"]E0", upcA, devices.KindUPCA, devices.SymUPCA},
		{"]C0", code128, devices.KindOther, devices.SymCode128},
		{"]C0", lc, devices.KindLoyaltyCard, devices.SymCode128},
		{"]C0", coupon, devices.KindCoupon, devices.SymCode128},
		{"]Q1", signIn, devices.KindSignInToken, devices.SymQR},
		{"]C1", "0109501101020917", devices.KindOther, devices.SymGS1_128},
	}
	for _, tr := range transports {
		for _, fr := range framings {
			t.Run(tr.name+"/"+fr.name, func(t *testing.T) {
				t.Parallel()
				send, events := tr.start(t, fr.f)
				for _, c := range codes {
					send(frameFor(fr.f, c.aim, c.code))
					ev := nextEvent(t, events)
					if ev.Type != devices.EventScan {
						t.Fatalf("%s: event %v err %v raw %q", c.code, ev.Type, ev.Err, ev.Raw)
					}
					if ev.Code != c.code || ev.Kind != c.kind {
						t.Errorf("got code %q kind %v, want %q %v", ev.Code, ev.Kind, c.code, c.kind)
					}
					wantSym, wantAIM := devices.SymUnknown, ""
					if fr.f.AIM {
						wantSym, wantAIM = c.sym, c.aim
					}
					if ev.Symbology != wantSym || ev.AIM != wantAIM {
						t.Errorf("%s: symbology %q aim %q, want %q %q", c.code, ev.Symbology, ev.AIM, wantSym, wantAIM)
					}
					if ev.Time.IsZero() {
						t.Errorf("%s: no timestamp", c.code)
					}
					if want := fr.f.Prefix + wantAIM + c.code; string(ev.Raw) != want {
						t.Errorf("raw %q, want %q", ev.Raw, want)
					}
				}
			})
		}
	}
}

// TestScanSplitAcrossReads: a frame arriving in pieces (a slow line, the
// CRLF split between reads) is still one scan.
func TestScanSplitAcrossReads(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			send, events := tr.start(t, devices.Framing{Suffix: devices.SuffixCRLF})
			send([]byte("40063813"))
			send([]byte("33931\r"))
			send([]byte("\n9638"))
			send([]byte("5074\r\n"))
			for _, want := range []string{ean13, ean8} {
				ev := nextEvent(t, events)
				if ev.Type != devices.EventScan || ev.Code != want {
					t.Fatalf("got %v %q (err %v), want scan %q", ev.Type, ev.Code, ev.Err, want)
				}
			}
		})
	}
}

// TestScanErrors: bad check digits, malformed codes, noise, over-long
// lines and partial frames are error events with the raw bytes; a good
// scan after them still reads.
func TestScanErrors(t *testing.T) {
	badLoyalty := []byte(loyalty(t))
	badLoyalty[len(badLoyalty)-1] = '0' + (badLoyalty[len(badLoyalty)-1]-'0'+1)%10
	cases := []struct {
		name    string
		framing devices.Framing
		send    []byte
		want    []error // one error event each, in order
		raws    []string
		code    string // Code of the last error event, if any
	}{
		{name: "ean13 check digit", send: []byte("4006381333932\r"), want: []error{devices.ErrCheckDigit}, raws: []string{"4006381333932"}, code: "4006381333932"},
		{name: "ean8 check digit", send: []byte("96385075\r"), want: []error{devices.ErrCheckDigit}, raws: []string{"96385075"}},
		{name: "upc-a check digit", send: []byte("036000291453\r"), want: []error{devices.ErrCheckDigit}, raws: []string{"036000291453"}},
		{name: "loyalty check digit", send: append(badLoyalty, '\r'), want: []error{devices.ErrCheckDigit}, raws: []string{string(badLoyalty)}},
		{name: "loyalty length", send: []byte("LC12345\r"), want: []error{devices.ErrMalformedCode}, raws: []string{"LC12345"}},
		{name: "coupon not base32", send: []byte("CPN-abc0189!\r"), want: []error{devices.ErrMalformedCode}, raws: []string{"CPN-abc0189!"}},
		{name: "sign-in token short", send: []byte("ECSI:abc\r"), want: []error{devices.ErrMalformedCode}, raws: []string{"ECSI:abc"}},
		{name: "aim says ean but letters", framing: devices.Framing{AIM: true}, send: []byte("]E0ABCDEF\r"), want: []error{devices.ErrMalformedCode}, raws: []string{"]E0ABCDEF"}},
		{name: "garbage", send: []byte("\x00\xff\x13\x80\x91\r"), want: []error{devices.ErrGarbage}, raws: []string{"\x00\xff\x13\x80\x91"}},
		{name: "unprintable inside", send: []byte("4006\x0038133\r"), want: []error{devices.ErrGarbage}, raws: []string{"4006\x0038133"}},
		{name: "noise then code", send: []byte("\xff\xfe" + ean13 + "\r"), want: []error{devices.ErrGarbage}, raws: []string{"\xff\xfe"}},
		{name: "missing prefix", framing: devices.Framing{Prefix: "\x02"}, send: []byte(ean13 + "\r"), want: []error{devices.ErrGarbage}, raws: []string{ean13}},
		{name: "over-long line", framing: devices.Framing{MaxLength: 32}, send: []byte(strings.Repeat("A", 100) + "\r"), want: []error{devices.ErrFrameTooLong}, raws: []string{strings.Repeat("A", 33)}},
		{name: "partial frame", framing: devices.Framing{FrameTimeout: 300 * time.Millisecond}, send: []byte("400638"), want: []error{devices.ErrPartialFrame}, raws: []string{"400638"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rig := startScanRig(t, c.framing)
			if err := rig.sim.Send(c.send); err != nil {
				t.Fatal(err)
			}
			for i, want := range c.want {
				ev := rig.next(t)
				if ev.Type != devices.EventError || !errors.Is(ev.Err, want) {
					t.Fatalf("event %d: %v err %v (raw %q), want error %v", i, ev.Type, ev.Err, ev.Raw, want)
				}
				if string(ev.Raw) != c.raws[i] {
					t.Errorf("event %d raw %q, want %q", i, ev.Raw, c.raws[i])
				}
				if c.code != "" && i == len(c.want)-1 && ev.Code != c.code {
					t.Errorf("error event code %q, want %q", ev.Code, c.code)
				}
			}
			if c.name == "noise then code" {
				if ev := rig.expect(t, devices.EventScan); ev.Code != ean13 {
					t.Errorf("code after noise %q", ev.Code)
				}
			}
			// The scanner still reads.
			if err := rig.sim.Send(frameFor(c.framing, "]E0", ean13)); err != nil {
				t.Fatal(err)
			}
			if ev := rig.expect(t, devices.EventScan); ev.Code != ean13 {
				t.Errorf("scan after error: %q", ev.Code)
			}
			rig.noEvent(t)
		})
	}
}

// TestScanRandomGarbage: bursts of random noise never crash or hang the
// scanner; each is reported; scans between them read.
func TestScanRandomGarbage(t *testing.T) {
	rig := startScanRig(t, devices.Framing{})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20; i++ {
		if err := rig.sim.Garbage(1+rng.IntN(200), rng); err != nil {
			t.Fatal(err)
		}
		ev := rig.expect(t, devices.EventError)
		if !errors.Is(ev.Err, devices.ErrGarbage) || len(ev.Raw) == 0 {
			t.Fatalf("burst %d: err %v raw %d bytes", i, ev.Err, len(ev.Raw))
		}
		if err := rig.sim.Scan(ean8); err != nil {
			t.Fatal(err)
		}
		if ev := rig.expect(t, devices.EventScan); ev.Code != ean8 {
			t.Fatalf("scan after burst %d: %q", i, ev.Code)
		}
	}
}

// TestScannerUnplugReplug: pulling the scanner is reported, a frame cut
// short by it is a partial frame, and the scanner reads again once it is
// back behind the same path.
func TestScannerUnplugReplug(t *testing.T) {
	rig := startScanRig(t, devices.Framing{})
	for round := 0; round < 3; round++ {
		if err := rig.sim.Scan(ean13); err != nil {
			t.Fatal(err)
		}
		if ev := rig.expect(t, devices.EventScan); ev.Code != ean13 {
			t.Fatalf("round %d: scan %q", round, ev.Code)
		}
		if err := rig.sim.Send([]byte("9638")); err != nil { // half a frame
			t.Fatal(err)
		}
		if err := rig.sim.Unplug(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(rig.path); !os.IsNotExist(err) {
			t.Fatalf("link still there after unplug: %v", err)
		}
		// The half frame is reported as partial if it reached the Scanner
		// before the cable went; bytes still in flight are lost, as on a
		// real line (TestScanPartialFrameOnDisconnect pins the first case).
		ev := rig.next(t)
		if ev.Type == devices.EventError {
			if !errors.Is(ev.Err, devices.ErrPartialFrame) || string(ev.Raw) != "9638" {
				t.Fatalf("round %d: %v raw %q, want partial frame 9638", round, ev.Err, ev.Raw)
			}
			ev = rig.next(t)
		}
		if ev.Type != devices.EventDisconnected || !errors.Is(ev.Err, devices.ErrDisconnected) {
			t.Fatalf("round %d: %v %v, want disconnected", round, ev.Type, ev.Err)
		}
		if err := rig.sim.Scan(ean8); err == nil {
			t.Fatal("scan on an unplugged scanner succeeded")
		}
		if err := rig.sim.Replug(); err != nil {
			t.Fatal(err)
		}
		rig.expect(t, devices.EventConnected)
	}
	if err := rig.sim.Scan(upcA); err != nil {
		t.Fatal(err)
	}
	if ev := rig.expect(t, devices.EventScan); ev.Code != upcA {
		t.Fatalf("scan after replug %q", ev.Code)
	}
	rig.noEvent(t)
}

// TestScanPartialFrameOnDisconnect: a frame cut short by the device going
// away is reported as partial, before the disconnect.
func TestScanPartialFrameOnDisconnect(t *testing.T) {
	port := newRecordedPort()
	events := make(chan devices.Event, 16)
	opens := 0
	runScanner(t, devices.ScannerConfig{
		Serial:     devices.SerialConfig{Path: "recorded"},
		MinBackoff: 10 * time.Millisecond,
		Open: func(context.Context) (devices.Port, error) {
			opens++
			if opens > 1 {
				return nil, os.ErrNotExist
			}
			return port, nil
		},
	}, events)
	if ev := nextEvent(t, events); ev.Type != devices.EventConnected {
		t.Fatalf("event %v", ev.Type)
	}
	port.send([]byte("9638"))
	port.fail(errors.New("input/output error"))
	ev := nextEvent(t, events)
	if ev.Type != devices.EventError || !errors.Is(ev.Err, devices.ErrPartialFrame) || string(ev.Raw) != "9638" {
		t.Fatalf("event %v %v raw %q, want partial frame", ev.Type, ev.Err, ev.Raw)
	}
	if ev := nextEvent(t, events); ev.Type != devices.EventDisconnected {
		t.Fatalf("event %v, want disconnected", ev.Type)
	}
}

// TestScannerAbsentAtStart: a scanner plugged in after Run started is
// picked up.
func TestScannerAbsentAtStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ttyUSB1")
	events := make(chan devices.Event, 16)
	runScanner(t, devices.ScannerConfig{
		Serial:     devices.SerialConfig{Path: path},
		MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond,
	}, events)
	ev := nextEvent(t, events)
	if ev.Type != devices.EventDisconnected || !errors.Is(ev.Err, devices.ErrDisconnected) || !errors.Is(ev.Err, os.ErrNotExist) {
		t.Fatalf("first event %v %v, want disconnected (not exist)", ev.Type, ev.Err)
	}
	vs, err := sim.NewScanner(sim.ScannerOptions{Link: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vs.Close() })
	if ev := nextEvent(t, events); ev.Type != devices.EventConnected || ev.Device != path {
		t.Fatalf("event %v device %q, want connected %s", ev.Type, ev.Device, path)
	}
	if err := vs.Scan(coupon); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, events); ev.Type != devices.EventScan || ev.Kind != devices.KindCoupon {
		t.Fatalf("event %v kind %v", ev.Type, ev.Kind)
	}
}

// TestScannerReplay: a file of codes replays in order.
func TestScannerReplay(t *testing.T) {
	rig := startScanRig(t, devices.Framing{AIM: true, Suffix: devices.SuffixCRLF})
	script := "# a morning at till 2\n" + ean13 + "\n\n]E4" + ean8 + "\n" + coupon + "\n"
	n, err := rig.sim.Replay(context.Background(), strings.NewReader(script), 0)
	if err != nil || n != 3 {
		t.Fatalf("replayed %d, %v", n, err)
	}
	for _, want := range []struct {
		code string
		sym  devices.Symbology
	}{{ean13, devices.SymEAN13}, {ean8, devices.SymEAN8}, {coupon, devices.SymCode128}} {
		ev := rig.expect(t, devices.EventScan)
		if ev.Code != want.code || ev.Symbology != want.sym {
			t.Errorf("got %q %q, want %q %q", ev.Code, ev.Symbology, want.code, want.sym)
		}
	}
}

func TestScannerConfigErrors(t *testing.T) {
	for _, cfg := range []devices.ScannerConfig{
		{},
		{Serial: devices.SerialConfig{Path: "/dev/ttyUSB0", Baud: 12345}},
		{Serial: devices.SerialConfig{Path: "/dev/ttyUSB0", StopBits: 3}},
		{Serial: devices.SerialConfig{Path: "/dev/ttyUSB0", Parity: 'M'}},
		{Serial: devices.SerialConfig{Path: "/dev/ttyUSB0"}, Framing: devices.Framing{Prefix: "\r"}},
	} {
		if _, err := devices.NewScanner(cfg); err == nil {
			t.Errorf("NewScanner(%+v) accepted", cfg)
		}
	}
}
