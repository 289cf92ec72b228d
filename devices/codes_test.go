package devices

import (
	"errors"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		code string
		sym  Symbology
		kind Kind
		err  error
	}{
		{"4006381333931", SymUnknown, KindEAN13, nil},
		{"4006381333932", SymUnknown, KindEAN13, ErrCheckDigit},
		{"5901234123457", SymEAN13, KindEAN13, nil},
		{"96385074", SymUnknown, KindEAN8, nil},
		{"96385070", SymUnknown, KindEAN8, ErrCheckDigit},
		{"036000291452", SymUnknown, KindUPCA, nil},
		{"036000291452", SymUPCA, KindUPCA, nil},
		{"036000291450", SymUnknown, KindUPCA, ErrCheckDigit},
		{"0036000291452", SymEAN13, KindEAN13, nil}, // UPC-A sent as EAN-13
		// Digit strings read from Code128 are not EANs.
		{"4006381333932", SymCode128, KindOther, nil},
		{"12345678", SymCode128, KindOther, nil},
		{"1234567890", SymUnknown, KindOther, nil},
		{"ORD-S7-000123", SymUnknown, KindOther, nil},
		{"ABC", SymEAN13, KindOther, ErrMalformedCode},
		{"LC1234567897", SymUnknown, KindLoyaltyCard, nil},
		{"LC1234567897", SymCode128, KindLoyaltyCard, nil},
		{"LC1234567890", SymUnknown, KindLoyaltyCard, ErrCheckDigit},
		{"LC123456789", SymUnknown, KindLoyaltyCard, ErrMalformedCode},
		{"LCD-TV-55", SymUnknown, KindOther, nil}, // not digits: an ordinary label
		{"CPN-MFRGGZDFMZTWQ2LK", SymUnknown, KindCoupon, nil},
		{"CPN-MFRGGZDF", SymQR, KindCoupon, nil},
		{"CPN-SHORT", SymUnknown, KindCoupon, ErrMalformedCode},
		{"CPN-mfrggzdfmz", SymUnknown, KindCoupon, ErrMalformedCode},
		{"CPN-MFRGGZDF0189", SymUnknown, KindCoupon, ErrMalformedCode}, // 0, 1, 8, 9 are not base32
		{"ECSI:dG9rZW4tZm9yLWphbmU.x9_Qv-2", SymQR, KindSignInToken, nil},
		{"ECSI:short", SymQR, KindSignInToken, ErrMalformedCode},
		{"ECSI:has space in the token!!", SymQR, KindSignInToken, ErrMalformedCode},
		{"", SymUnknown, KindUnknown, ErrMalformedCode},
		{"abc\x00", SymUnknown, KindUnknown, ErrMalformedCode},
		{"0109501101020917\x1d10ABC", SymGS1_128, KindOther, nil}, // GS1 field separator
	}
	for _, c := range cases {
		kind, err := ClassifySymbology(c.code, c.sym)
		if kind != c.kind || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("ClassifySymbology(%q, %q) = %v, %v; want %v, %v", c.code, c.sym, kind, err, c.kind, c.err)
		}
	}
}

func TestCheckDigits(t *testing.T) {
	for _, c := range []struct {
		digits string
		ean    byte
	}{
		{"400638133393", '1'},
		{"590123412345", '7'},
		{"9638507", '4'},
		{"03600029145", '2'},
		{"12345678901", '2'}, // UPC-A 123456789012
		{"x1", 0},
	} {
		if got := EANCheckDigit(c.digits); got != c.ean {
			t.Errorf("EANCheckDigit(%q) = %q, want %q", c.digits, got, c.ean)
		}
	}
	// The classic Luhn example: 7992739871 check 3.
	if got := LuhnCheckDigit("7992739871"); got != '3' {
		t.Errorf("LuhnCheckDigit = %q, want '3'", got)
	}
	code, err := LoyaltyCode("123456789")
	if err != nil || code != "LC1234567897" {
		t.Errorf("LoyaltyCode = %q, %v", code, err)
	}
	if _, err := LoyaltyCode("12345"); !errors.Is(err, ErrMalformedCode) {
		t.Errorf("LoyaltyCode(short) err %v", err)
	}
}

func TestParseAIM(t *testing.T) {
	for _, c := range []struct {
		in, id, rest string
		sym          Symbology
		ok           bool
	}{
		{"]E04006381333931", "]E0", "4006381333931", SymEAN13, true},
		{"]E0036000291452", "]E0", "036000291452", SymUPCA, true},
		{"]E496385074", "]E4", "96385074", SymEAN8, true},
		{"]C0ABC", "]C0", "ABC", SymCode128, true},
		{"]C1010950", "]C1", "010950", SymGS1_128, true},
		{"]Q1ECSI:x", "]Q1", "ECSI:x", SymQR, true},
		{"]d2010950", "]d2", "010950", SymDataMatrix, true},
		{"]Z9x", "]Z9", "x", SymOther, true},
		{"4006381333931", "", "4006381333931", SymUnknown, false},
		{"]E", "", "]E", SymUnknown, false},
	} {
		id, sym, rest, ok := ParseAIM([]byte(c.in))
		if id != c.id || sym != c.sym || string(rest) != c.rest || ok != c.ok {
			t.Errorf("ParseAIM(%q) = %q %q %q %v", c.in, id, sym, rest, ok)
		}
	}
}

// TestFramer drives the framer with chunks and clock ticks, no port.
func TestFramer(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type step struct {
		feed string // bytes read at 'at'; empty: a tick
		at   int    // ms
	}
	type out struct {
		data string
		err  error
	}
	cases := []struct {
		name  string
		f     Framing
		steps []step
		want  []out
	}{
		{"cr", Framing{}, []step{{"123\r456\r", 0}}, []out{{"123", nil}, {"456", nil}}},
		{"cr drops lf of crlf", Framing{}, []step{{"123\r", 0}, {"\n456\r\n", 1}}, []out{{"123", nil}, {"456", nil}}},
		{"lf drops cr before it", Framing{Suffix: SuffixLF}, []step{{"123\r\n456\n", 0}}, []out{{"123", nil}, {"456", nil}}},
		{"crlf split", Framing{Suffix: SuffixCRLF}, []step{{"12", 0}, {"3\r", 1}, {"\n", 2}, {"45\r\n", 3}}, []out{{"123", nil}, {"45", nil}}},
		{"tab", Framing{Suffix: SuffixTab}, []step{{"a\tb\t", 0}}, []out{{"a", nil}, {"b", nil}}},
		{"empty frames skipped", Framing{}, []step{{"\r\r\r1\r", 0}}, []out{{"1", nil}}},
		{"none: idle ends frame", Framing{Suffix: SuffixNone, IdleTimeout: 100 * time.Millisecond},
			[]step{{"12", 0}, {"34", 10}, {"", 50}, {"", 111}, {"56", 200}, {"", 350}},
			[]out{{"1234", nil}, {"56", nil}}},
		{"partial after frame timeout", Framing{FrameTimeout: 500 * time.Millisecond},
			[]step{{"12", 0}, {"", 400}, {"", 501}, {"34\r", 600}},
			[]out{{"12", ErrPartialFrame}, {"34", nil}}},
		{"too long, rest dropped to suffix", Framing{MaxLength: 4},
			[]step{{"123456789\r", 0}, {"ab\r", 1}},
			[]out{{"12345", ErrFrameTooLong}, {"ab", nil}}},
		{"too long, none: dropped to silence", Framing{Suffix: SuffixNone, MaxLength: 4, IdleTimeout: 100 * time.Millisecond},
			[]step{{"123456789", 0}, {"", 150}, {"ab", 200}, {"", 400}},
			[]out{{"12345", ErrFrameTooLong}, {"ab", nil}}},
		{"too long, no suffix ever: silence resets", Framing{MaxLength: 4, FrameTimeout: 500 * time.Millisecond},
			[]step{{"123456789", 0}, {"", 600}, {"ab\r", 700}},
			[]out{{"12345", ErrFrameTooLong}, {"ab", nil}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fr := newFramer(c.f)
			var got []frame
			for _, s := range c.steps {
				if s.feed == "" {
					got = append(got, fr.tick(ms(s.at))...)
				} else {
					got = append(got, fr.feed([]byte(s.feed), ms(s.at))...)
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d frames %+v, want %d", len(got), got, len(c.want))
			}
			for i, w := range c.want {
				if string(got[i].data) != w.data || !errors.Is(got[i].err, w.err) || (w.err == nil) != (got[i].err == nil) {
					t.Errorf("frame %d: %q %v, want %q %v", i, got[i].data, got[i].err, w.data, w.err)
				}
			}
		})
	}
	// What is left when the device goes away.
	fr := newFramer(Framing{})
	fr.feed([]byte("12"), t0)
	if f := fr.flush(errors.New("EIO")); len(f) != 1 || !errors.Is(f[0].err, ErrPartialFrame) || string(f[0].data) != "12" {
		t.Errorf("flush: %+v", f)
	}
	fr = newFramer(Framing{Suffix: SuffixNone})
	fr.feed([]byte("12"), t0)
	if f := fr.flush(errors.New("EIO")); len(f) != 1 || f[0].err != nil {
		t.Errorf("flush none: %+v", f)
	}
}

func TestDecodeFrame(t *testing.T) {
	at := time.Unix(0, 0)
	evs := decodeFrame(Framing{Prefix: "\x02", AIM: true}, []byte("\xff\x02]E04006381333931"), at)
	if len(evs) != 2 || !errors.Is(evs[0].Err, ErrGarbage) || string(evs[0].Raw) != "\xff" {
		t.Fatalf("noise event: %+v", evs)
	}
	if ev := evs[1]; ev.Type != EventScan || ev.Code != "4006381333931" || ev.Symbology != SymEAN13 || ev.AIM != "]E0" || string(ev.Raw) != "\x02]E04006381333931" {
		t.Errorf("scan event: %+v", ev)
	}
	if evs := decodeFrame(Framing{AIM: true}, []byte("]E0"), at); len(evs) != 1 || !errors.Is(evs[0].Err, ErrGarbage) {
		t.Errorf("AIM id alone: %+v", evs)
	}
}

func TestParseConfig(t *testing.T) {
	for in, want := range map[string]Suffix{"cr": SuffixCR, "LF": SuffixLF, "CrLf": SuffixCRLF, "tab": SuffixTab, "none": SuffixNone} {
		if got, err := ParseSuffix(in); err != nil || got != want {
			t.Errorf("ParseSuffix(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseSuffix("etx"); err == nil {
		t.Error("ParseSuffix(etx) accepted")
	}
	for in, want := range map[string]Parity{"": ParityNone, "none": ParityNone, "E": ParityEven, "odd": ParityOdd} {
		if got, err := ParseParity(in); err != nil || got != want {
			t.Errorf("ParseParity(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseParity("mark"); err == nil {
		t.Error("ParseParity(mark) accepted")
	}
}

// FuzzScanStream: no byte stream crashes the framer or the frame decoder,
// and every byte of a frame is accounted for in an event.
func FuzzScanStream(f *testing.F) {
	f.Add([]byte("4006381333931\r\n\x00\xff]E096385074\r"), true, uint8(0))
	f.Add([]byte("\x02CPN-MFRGGZDF\r\x02LC1234567897\r"), false, uint8(1))
	f.Add([]byte("ECSI:dG9rZW4tZm9yLWphbmU.x9_Qv-2\t\x1d\x1d"), true, uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, aim bool, suffix uint8) {
		fc := Framing{Suffix: Suffix(suffix % 5), AIM: aim, MaxLength: 64}
		if suffix&0x80 != 0 {
			fc.Prefix = "\x02"
		}
		fr := newFramer(fc)
		now := time.Unix(0, 0)
		frames := fr.feed(data, now)
		frames = append(frames, fr.tick(now.Add(time.Hour))...)
		for _, f := range frames {
			if f.err != nil {
				continue
			}
			if len(f.data) > 65 {
				t.Fatalf("frame of %d bytes passed MaxLength", len(f.data))
			}
			for _, ev := range decodeFrame(fc, f.data, now) {
				if ev.Type == EventScan && (ev.Code == "" || ev.Err != nil) {
					t.Fatalf("scan event %+v", ev)
				}
				if ev.Type == EventError && ev.Err == nil {
					t.Fatalf("error event without error %+v", ev)
				}
			}
		}
	})
}
