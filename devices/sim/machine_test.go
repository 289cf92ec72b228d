package sim

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

// Byte sequences in these tests are written from Epson's ESC/POS command
// reference (command formats and its examples), not produced by package
// devices' encoder, so the decoder is checked independently of it.

// h decodes space-separated hex with "quoted text" runs: h(`1b 40 "AB" 0a`).
func h(tb testing.TB, s string) []byte {
	tb.Helper()
	var out []byte
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \n\t")
		if s == "" {
			break
		}
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				tb.Fatalf("unterminated text in %q", s)
			}
			out = append(out, s[1:1+end]...)
			s = s[end+2:]
			continue
		}
		tok := s
		if i := strings.IndexAny(s, " \n\t"); i >= 0 {
			tok, s = s[:i], s[i:]
		} else {
			s = ""
		}
		b, err := hex.DecodeString(tok)
		if err != nil {
			tb.Fatalf("bad hex %q: %v", tok, err)
		}
		out = append(out, b...)
	}
	return out
}

func decode(tb testing.TB, hexs string) *Machine {
	tb.Helper()
	m := NewMachine(48)
	m.Write(h(tb, hexs))
	return m
}

// only returns the one finished receipt.
func only(tb testing.TB, m *Machine) *Receipt {
	tb.Helper()
	rs := m.Receipts()
	if len(rs) != 1 {
		tb.Fatalf("%d receipts, want 1 (unknown %v)", len(rs), m.Unknown)
	}
	return rs[0]
}

func TestDecodeTextRendering(t *testing.T) {
	// ESC @; ESC a 1; ESC E 1; "HELLO" LF; ESC E 0; ESC a 0; "left" LF;
	// ESC a 2; "right" LF; GS V 0 (full cut).
	m := decode(t, `1b 40 1b 61 01 1b 45 01 "HELLO" 0a 1b 45 00 1b 61 00 "left" 0a 1b 61 02 "right" 0a 1d 56 00`)
	want := "" +
		"+------------------------------------------------+\n" +
		"|                     HELLO                      | bold\n" +
		"|left                                            |\n" +
		"|                                           right|\n" +
		"+------------------- full cut -------------------+\n"
	if got := only(t, m).Text(48); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestDecodeStyles(t *testing.T) {
	cases := []struct {
		name  string
		bytes string
		want  Style
	}{
		{"GS ! 0x11 double width and height", `1d 21 11 "X" 0a`, Style{Width: 2, Height: 2}},
		{"GS ! 0x70 8x wide", `1d 21 70 "X" 0a`, Style{Width: 8, Height: 1}},
		{"ESC ! 0x38 emphasized double", `1b 21 38 "X" 0a`, Style{Bold: true, Width: 2, Height: 2}},
		{"ESC ! 0x81 font B underlined", `1b 21 81 "X" 0a`, Style{FontB: true, Underline: 1, Width: 1, Height: 1}},
		{"ESC - 2", `1b 2d 02 "X" 0a`, Style{Underline: 2, Width: 1, Height: 1}},
		{"ESC - '1' (ASCII form)", `1b 2d 31 "X" 0a`, Style{Underline: 1, Width: 1, Height: 1}},
		{"GS B 1 reverse", `1d 42 01 "X" 0a`, Style{Reverse: true, Width: 1, Height: 1}},
		{"ESC G 1 double strike", `1b 47 01 "X" 0a`, Style{DoubleStrike: true, Width: 1, Height: 1}},
		{"ESC M 1 font B", `1b 4d 01 "X" 0a`, Style{FontB: true, Width: 1, Height: 1}},
		{"ESC { 1 upside down", `1b 7b 01 "X" 0a`, Style{UpsideDown: true, Width: 1, Height: 1}},
		{"ESC @ resets", `1b 45 01 1d 21 11 1b 40 "X" 0a`, Style{Width: 1, Height: 1}},
	}
	for _, c := range cases {
		m := decode(t, c.bytes)
		r := m.Current()
		if r == nil || len(r.Items) != 1 || len(r.Items[0].Runs) != 1 {
			t.Fatalf("%s: %+v", c.name, r)
		}
		if got := r.Items[0].Runs[0].Style; got != c.want {
			t.Errorf("%s: style %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestDecodeAlignAtLineStart(t *testing.T) {
	// ESC a takes effect at the beginning of a line only.
	m := decode(t, `"ab" 1b 61 01 "cd" 0a "ef" 0a`)
	r := m.Current()
	if r.Items[0].Align != AlignLeft || r.Items[0].Text() != "abcd" || r.Items[1].Align != AlignCenter {
		t.Errorf("items %+v", r.Items)
	}
}

func TestDecodeFeedsAndCuts(t *testing.T) {
	cases := []struct {
		bytes string
		items int
		end   End
	}{
		{`"A" 1b 64 03 1d 56 01`, 3, EndPartialCut},          // ESC d 3 after text: the line and 2 more
		{`"A" 0a 1b 64 03 1d 56 30`, 4, EndFullCut},          // ESC d 3 on an empty buffer: 3 lines
		{`"A" 0a 1d 56 41 00`, 1, EndFullCut},                // GS V 65 n: feed and full cut
		{`"A" 0a 1d 56 42 03`, 1, EndPartialCut},             // GS V 66 n: feed and partial cut
		{`"A" 0a 1b 69`, 1, EndFullCut},                      // ESC i
		{`"A" 0a 1b 6d`, 1, EndPartialCut},                   // ESC m
		{`"A" 0a 1b 4a 3c 1d 56 31`, 3, EndPartialCut},       // ESC J 60 dots: two blank lines
		{`"A" 0d 0a 1d 56 31`, 1, EndPartialCut},             // CR is ignored (no auto line feed)
		{`"A" 09 "B" 0a 1d 56 31`, 1, EndPartialCut},         // HT
		{`1b 70 00 19 fa "A" 0a 1d 56 31`, 1, EndPartialCut}, // ESC p: drawer kick
	}
	for _, c := range cases {
		m := decode(t, c.bytes)
		r := only(t, m)
		if len(r.Items) != c.items || r.End != c.end {
			t.Errorf("%s: %d items %v, want %d %v\n%s", c.bytes, len(r.Items), r.End, c.items, c.end, r.Text(48))
		}
	}
	if r := only(t, decode(t, `1b 70 00 19 fa "A" 0a 1d 56 31`)); r.DrawerKicks != 1 {
		t.Errorf("drawer kicks %d", r.DrawerKicks)
	}
	// A cut with nothing printed since the last one leaves no receipt.
	if rs := decode(t, `"A" 0a 1d 56 00 1d 56 00`).Receipts(); len(rs) != 1 {
		t.Errorf("%d receipts", len(rs))
	}
}

func TestDecodeCodePages(t *testing.T) {
	cases := []struct {
		bytes, want string
	}{
		{`1b 74 10 80 "5" 0a`, "€5"},     // ESC t 16: WPC1252, 0x80 is the euro sign
		{`1b 74 10 e9 e8 a3 0a`, "éè£"},  // WPC1252 Latin-1 half
		{`1b 74 00 82 8a 9c 0a`, "éè£"},  // ESC t 0: PC437
		{`82 0a`, "é"},                   // PC437 is the power-on table
		{`1b 74 02 82 0a`, "?"},          // PC850: not simulated
		{`1b 74 10 80 1b 40 80 0a`, "Ç"}, // ESC @ clears the buffer, back to PC437
	}
	for _, c := range cases {
		if got := decode(t, c.bytes).Current().Items[0].Text(); got != c.want {
			t.Errorf("%s: %q, want %q", c.bytes, got, c.want)
		}
	}
}

func TestDecodeBarcodes(t *testing.T) {
	cases := []struct {
		name  string
		bytes string
		want  Barcode
	}{
		{"EAN13 format A, printer adds the check digit", `1d 6b 02 "496595707379" 00`,
			Barcode{Type: "EAN13", Data: "4965957073797", HRI: 0, Height: 162, Width: 3}},
		{"EAN13 format B, 13 digits", `1d 48 02 1d 68 50 1d 77 02 1d 6b 43 0d "4965957073797"`,
			Barcode{Type: "EAN13", Data: "4965957073797", HRI: 2, Height: 80, Width: 2}},
		{"EAN13 wrong check digit", `1d 6b 43 0d "4965957073790"`,
			Barcode{Type: "EAN13", Data: "4965957073790", Height: 162, Width: 3, Err: "check digit mismatch"}},
		{"UPC-A format A", `1d 6b 00 "01234567890" 00`,
			Barcode{Type: "UPC-A", Data: "012345678905", Height: 162, Width: 3}},
		{"EAN8 format B", `1d 6b 44 07 "9638507"`,
			Barcode{Type: "EAN8", Data: "96385074", Height: 162, Width: 3}},
		// The reference's Code128 example: "No." in code set B, then 12 34
		// 56 in code set C.
		{"CODE128 reference example", `1d 6b 49 0a 7b 42 "No." 7b 43 0c 22 38`,
			Barcode{Type: "CODE128", Data: "No.123456", Height: 162, Width: 3}},
		{"CODE128 escaped brace", `1d 6b 49 06 7b 42 "a" 7b 7b "b"`,
			Barcode{Type: "CODE128", Data: "a{b", Height: 162, Width: 3}},
		{"CODE39 format A", `1d 6b 04 "ABC-1" 00`,
			Barcode{Type: "CODE39", Data: "ABC-1", Height: 162, Width: 3}},
	}
	for _, c := range cases {
		r := decode(t, c.bytes).Current()
		if r == nil || len(r.Items) != 1 || r.Items[0].Kind != ItemBarcode {
			t.Fatalf("%s: %+v", c.name, r)
		}
		got := *r.Items[0].Barcode
		got.Raw = nil
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestDecodeQR(t *testing.T) {
	// GS ( k: select model 2, module size 5, error correction H, store
	// "ABCDEFGH" (pL = 8 + 3), print.
	m := decode(t, `1b 61 01 1d 28 6b 04 00 31 41 32 00  1d 28 6b 03 00 31 43 05  1d 28 6b 03 00 31 45 33
		1d 28 6b 0b 00 31 50 30 "ABCDEFGH"  1d 28 6b 03 00 31 51 30`)
	r := m.Current()
	if r == nil || len(r.Items) != 1 || r.Items[0].Kind != ItemQR {
		t.Fatalf("%+v", r)
	}
	if q := *r.Items[0].QR; q != (QR{Data: "ABCDEFGH", Model: 2, Module: 5, Level: 'H'}) || r.Items[0].Align != AlignCenter {
		t.Errorf("qr %+v align %v", q, r.Items[0].Align)
	}
	if len(m.Unknown) > 0 {
		t.Errorf("unknown %v", m.Unknown)
	}
}

func TestDecodeImages(t *testing.T) {
	// GS v 0: 1 byte wide, 8 rows; the data holds 10 04 01, which is image
	// data here, not a status request.
	m := decode(t, `1d 76 30 00 01 00 08 00 ff 10 04 01 81 81 81 ff`)
	if reply := m.Write(nil); len(reply) != 0 {
		t.Errorf("reply %x", reply)
	}
	r := m.Current()
	if r == nil || len(r.Items) != 1 || r.Items[0].Kind != ItemImage || r.Items[0].Image.Width != 8 || r.Items[0].Image.Height != 8 {
		t.Fatalf("%+v", r)
	}
	// ESC * 0: 8-dot single density, 3 columns.
	m = decode(t, `1b 2a 00 03 00 ff 81 ff 0a`)
	r = m.Current()
	if r == nil || r.Items[0].Kind != ItemImage || r.Items[0].Image.Width != 3 || r.Items[0].Image.Bits[0] != 0xe0 || r.Items[0].Image.Bits[1] != 0xa0 {
		t.Fatalf("%+v %+v", r, r.Items[0].Image)
	}
}

func TestStatusAnswers(t *testing.T) {
	cases := []struct {
		name  string
		setup func(*Machine)
		n1    byte // DLE EOT 1..4 answers
		n2    byte
		n3    byte
		n4    byte
		gsr   []byte // GS r 1 answer (none when the printer is stopped)
	}{
		{"ready", func(*Machine) {}, 0x12, 0x12, 0x12, 0x12, []byte{0x00}},
		{"near end", func(m *Machine) { m.PaperNearEnd = true }, 0x12, 0x12, 0x12, 0x1e, []byte{0x03}},
		{"paper out", func(m *Machine) { m.SetPaperOut(true) }, 0x1a, 0x32, 0x12, 0x7e, nil},
		{"cover open", func(m *Machine) { m.SetCoverOpen(true) }, 0x1a, 0x16, 0x12, 0x12, nil},
		{"offline", func(m *Machine) { m.SetOffline(true) }, 0x1a, 0x12, 0x12, 0x12, nil},
	}
	for _, c := range cases {
		m := NewMachine(48)
		c.setup(m)
		got := m.Write(h(t, `10 04 01 10 04 02 10 04 03 10 04 04`))
		if want := []byte{c.n1, c.n2, c.n3, c.n4}; !bytes.Equal(got, want) {
			t.Errorf("%s: DLE EOT answers % x, want % x", c.name, got, want)
		}
		if got := m.Write(h(t, `1d 72 01`)); !bytes.Equal(got, c.gsr) {
			t.Errorf("%s: GS r 1 answer % x, want % x", c.name, got, c.gsr)
		}
		for _, b := range got {
			if b&0x93 != 0x12 && len(got) == 4 {
				t.Errorf("%s: answer %02x lacks the fixed bits", c.name, b)
			}
		}
	}
	// DLE EOT 7 a takes a parameter and is not answered here; what follows
	// is still read right.
	m := NewMachine(48)
	if got := m.Write(h(t, `10 04 07 01 10 04 01`)); !bytes.Equal(got, []byte{0x12}) {
		t.Errorf("after DLE EOT 7: % x", got)
	}
}

func TestPaperRunsOut(t *testing.T) {
	m := NewMachine(48)
	m.PaperLeft = 2
	reply := m.Write(h(t, `1b 40 "one" 0a "two" 0a "three" 0a "four" 0a 1d 56 00 10 04 04 1d 72 01`))
	if !m.PaperOut || !bytes.Equal(reply, []byte{0x7e}) {
		t.Fatalf("paper out %v, reply % x", m.PaperOut, reply)
	}
	r := only(t, m)
	if r.End != EndTorn || len(r.Items) != 2 || r.Items[1].Text() != "two" {
		t.Errorf("%s", r.Text(48))
	}
	// New paper: the next job prints from its start.
	m.SetPaperOut(false)
	m.Write(h(t, `1b 40 "again" 0a 1d 56 00`))
	if rs := m.Receipts(); len(rs) != 2 || !rs[1].Complete() || rs[1].Items[0].Text() != "again" {
		t.Errorf("%v", rs)
	}
}

// TestSplitWrites: a stream fed a byte at a time decodes as fed whole.
func TestSplitWrites(t *testing.T) {
	stream := h(t, `1b 40 1b 74 10 1b 61 01 1d 21 11 "Big" 0a 1d 21 00 1b 61 00 "x" 80 0a
		1d 48 02 1d 6b 49 0a 7b 42 "No." 7b 43 0c 22 38
		1d 28 6b 0b 00 31 50 30 "ABCDEFGH" 1d 28 6b 03 00 31 51 30
		1d 76 30 00 01 00 02 00 10 04 10 04 01 1b 64 02 1d 56 42 00`)
	whole := NewMachine(48)
	wantReply := whole.Write(stream)
	bytewise := NewMachine(48)
	var reply []byte
	for _, b := range stream {
		reply = append(reply, bytewise.Write([]byte{b})...)
	}
	if !bytes.Equal(reply, wantReply) || len(reply) != 1 {
		t.Errorf("replies % x vs % x", reply, wantReply)
	}
	a, b := whole.Receipts(), bytewise.Receipts()
	if len(a) != 1 || len(b) != 1 || a[0].Text(48) != b[0].Text(48) {
		t.Errorf("whole:\n%v\nbytewise:\n%v", a, b)
	}
	if len(whole.Unknown) > 0 {
		t.Errorf("unknown %v", whole.Unknown)
	}
}

func TestWrapAndUnknown(t *testing.T) {
	m := decode(t, `"`+strings.Repeat("A", 50)+`" 0a 1d 21 10 "`+strings.Repeat("B", 25)+`" 0a 1b 7f 1d 99 "z" 0a`)
	r := m.Current()
	if len(r.Items) != 5 || len(r.Items[0].Text()) != 48 || r.Items[1].Text() != "AA" || len(r.Items[2].Text()) != 24 {
		t.Errorf("%s", r.Text(48))
	}
	if len(m.Unknown) != 2 || m.Unknown[0] != "1b 7f" || m.Unknown[1] != "1d 99" {
		t.Errorf("unknown %v", m.Unknown)
	}
}

// TestAbsurdLength: a command announcing megabytes is skipped as garbage,
// not waited for.
func TestAbsurdLength(t *testing.T) {
	m := decode(t, `1d 76 30 00 ff ff ff ff "after" 0a`)
	r := m.Current()
	if r == nil || len(m.Unknown) != 1 || m.Unknown[0] != "1d 76" {
		t.Fatalf("unknown %v, receipt %v", m.Unknown, r)
	}
	if got := r.Items[len(r.Items)-1].Text(); !strings.HasSuffix(got, "after") {
		t.Errorf("last line %q", got)
	}
}

// FuzzMachine: no byte stream crashes the printer, and feeding it in
// pieces reads the same as whole. go test runs the seeds; go test -fuzz
// FuzzMachine ./devices/sim/ explores.
func FuzzMachine(f *testing.F) {
	for _, s := range []string{
		`1b 40 1b 61 01 1b 45 01 "HELLO" 0a 1d 56 00`,
		`1d 6b 49 0a 7b 42 "No." 7b 43 0c 22 38`,
		`1d 28 6b 0b 00 31 50 30 "ABCDEFGH" 1d 28 6b 03 00 31 51 30`,
		`1d 76 30 00 01 00 02 00 10 04 10 04 01`,
		`1b 2a 21 02 00 ff ff ff 00 00 00`,
		`10 04 01 10 04 07 01 10 14 08 01 03 14 01 06 02 08`,
		`1d 6b 02 "4965957073" 00 1d 6b 43 0d "4965957073797"`,
		`1b 44 08 10 18 00 09 "x" 0a 1b 21 38 "big" 0a 1d 21 77 "huge" 0a`,
	} {
		f.Add(h(f, s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		whole := NewMachine(32)
		whole.PaperLeft = 50
		r1 := whole.Write(data)
		pieces := NewMachine(32)
		pieces.PaperLeft = 50
		var r2 []byte
		step := int(split%16) + 1
		for i := 0; i < len(data); i += step {
			r2 = append(r2, pieces.Write(data[i:min(len(data), i+step)])...)
		}
		if !bytes.Equal(r1, r2) {
			t.Fatalf("answers % x vs % x", r1, r2)
		}
		a, b := whole.Receipts(), pieces.Receipts()
		if len(a) != len(b) {
			t.Fatalf("%d vs %d receipts", len(a), len(b))
		}
		for i := range a {
			if a[i].Text(32) != b[i].Text(32) {
				t.Fatalf("receipt %d differs", i)
			}
			a[i].Image(32)
		}
	})
}
