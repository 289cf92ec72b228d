package devices

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ESC/POS control bytes.
const (
	escLF  = 0x0a
	escESC = 0x1b
	escGS  = 0x1d
	escDLE = 0x10
	escEOT = 0x04
)

// Align is a text justification (ESC a n).
type Align byte

// Justifications.
const (
	AlignLeft   Align = 0
	AlignCenter Align = 1
	AlignRight  Align = 2
)

// CodePage is a character code table (ESC t n); its value is n.
type CodePage byte

// Code pages the builder can encode text into.
const (
	CodePagePC437   CodePage = 0  // USA, standard Europe: the printer's power-on table
	CodePageWPC1252 CodePage = 16 // Windows Latin-1, with €: the default of Layout
)

// Cut is how the paper is cut.
type Cut byte

// Cuts (GS V m): after feeding the paper to the cutter.
const (
	CutFull    Cut = 65 // GS V 65 n: feed n dots, full cut
	CutPartial Cut = 66 // GS V 66 n: feed n dots, partial cut (one point left uncut)
)

// HRI is where a barcode's human readable interpretation is printed
// (GS H n).
type HRI byte

// HRI positions.
const (
	HRINone  HRI = 0
	HRIAbove HRI = 1
	HRIBelow HRI = 2
	HRIBoth  HRI = 3
)

// QR error correction levels (GS ( k, fn 69).
type QRLevel byte

// QR error correction levels: L 7%, M 15%, Q 25%, H 30%.
const (
	QRLevelL QRLevel = 48
	QRLevelM QRLevel = 49
	QRLevelQ QRLevel = 50
	QRLevelH QRLevel = 51
)

// Layout is the paper a receipt is laid out for. The zero value is an
// 80 mm printer: 48 columns of Font A (576 dots), text in WPC1252.
type Layout struct {
	// Columns of Font A across the paper: 48 for 80 mm paper (576 dots),
	// 32 for 58 mm (384 dots), 42 for 80 mm printers set to 512 dots.
	// Zero means 48.
	Columns int
	// PC437 encodes text in code page PC437, the printer's power-on table,
	// for printers without WPC1252 (CodePageWPC1252, which has € and the
	// accented letters of western Europe, is the default).
	PC437 bool
}

func (l Layout) withDefaults() Layout {
	if l.Columns <= 0 {
		l.Columns = 48
	}
	return l
}

func (l Layout) codePage() CodePage {
	if l.PC437 {
		return CodePagePC437
	}
	return CodePageWPC1252
}

// Builder writes an ESC/POS byte stream. Each method appends commands and
// returns the Builder, so calls chain; the first invalid argument (a bad
// EAN, a QR too large) is remembered and Bytes returns it. The zero value
// is not usable; call NewBuilder. A Builder is not safe for concurrent use.
type Builder struct {
	buf  []byte
	page CodePage
	err  error
}

// NewBuilder returns an empty builder. Nothing is written until Init.
func NewBuilder() *Builder { return &Builder{page: CodePagePC437} }

// Bytes returns the stream built so far, or the first error.
func (b *Builder) Bytes() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	return b.buf, nil
}

func (b *Builder) fail(err error) *Builder {
	if b.err == nil {
		b.err = err
	}
	return b
}

// Raw appends bytes as they are.
func (b *Builder) Raw(p ...byte) *Builder {
	b.buf = append(b.buf, p...)
	return b
}

// Init resets the printer (ESC @: clears the print buffer, styles back to
// defaults) and selects the code page (ESC t n).
func (b *Builder) Init(cp CodePage) *Builder {
	b.Raw(escESC, '@')
	return b.CodePage(cp)
}

// CodePage selects the character code table (ESC t n) that Text encodes
// into.
func (b *Builder) CodePage(cp CodePage) *Builder {
	if cp != CodePagePC437 && cp != CodePageWPC1252 {
		return b.fail(fmt.Errorf("escpos: code page %d not supported", cp))
	}
	b.page = cp
	return b.Raw(escESC, 't', byte(cp))
}

// Align sets the justification (ESC a n). Printers apply it at the start
// of a line.
func (b *Builder) Align(a Align) *Builder { return b.Raw(escESC, 'a', byte(a)) }

// Bold turns emphasis on or off (ESC E n).
func (b *Builder) Bold(on bool) *Builder { return b.Raw(escESC, 'E', bit(on)) }

// Underline sets underline: 0 off, 1 one dot, 2 two dots (ESC - n).
func (b *Builder) Underline(n int) *Builder {
	if n < 0 || n > 2 {
		return b.fail(fmt.Errorf("escpos: underline %d (want 0 to 2)", n))
	}
	return b.Raw(escESC, '-', byte(n))
}

// Reverse turns white-on-black printing on or off (GS B n).
func (b *Builder) Reverse(on bool) *Builder { return b.Raw(escGS, 'B', bit(on)) }

// Size sets the character magnification, 1 to 8 each way (GS ! n).
func (b *Builder) Size(width, height int) *Builder {
	if width < 1 || width > 8 || height < 1 || height > 8 {
		return b.fail(fmt.Errorf("escpos: character size %dx%d (want 1 to 8)", width, height))
	}
	return b.Raw(escGS, '!', byte((width-1)<<4|(height-1)))
}

// FontB selects Font B (9x17 dots) or back to Font A (12x24) (ESC M n).
func (b *Builder) FontB(on bool) *Builder { return b.Raw(escESC, 'M', bit(on)) }

// Text appends text in the current code page; characters the page lacks
// print as '?'. Control characters other than LF are dropped.
func (b *Builder) Text(s string) *Builder {
	for _, r := range s {
		if r == '\n' {
			b.buf = append(b.buf, escLF)
			continue
		}
		if r < 0x20 || r == 0x7f {
			continue
		}
		b.buf = append(b.buf, encodeRune(b.page, r))
	}
	return b
}

// Line appends text and a line feed (LF: print the line).
func (b *Builder) Line(s string) *Builder { return b.Text(s).Raw(escLF) }

// Feed prints what is buffered and feeds n lines (ESC d n).
func (b *Builder) Feed(n int) *Builder {
	if n < 0 || n > 255 {
		return b.fail(fmt.Errorf("escpos: feed %d lines (want 0 to 255)", n))
	}
	return b.Raw(escESC, 'd', byte(n))
}

// Cut feeds the paper to the cutter (plus feedDots) and cuts (GS V m n).
func (b *Builder) Cut(c Cut, feedDots int) *Builder {
	if c != CutFull && c != CutPartial {
		return b.fail(fmt.Errorf("escpos: cut mode %d", c))
	}
	if feedDots < 0 || feedDots > 255 {
		return b.fail(fmt.Errorf("escpos: cut feed %d dots (want 0 to 255)", feedDots))
	}
	return b.Raw(escGS, 'V', byte(c), byte(feedDots))
}

// OpenDrawer pulses the cash drawer kick connector pin 2 (ESC p 0 t1 t2),
// on for 100 ms and off for 200 ms.
func (b *Builder) OpenDrawer() *Builder { return b.Raw(escESC, 'p', 0, 50, 100) }

// BarcodeOptions are a barcode's height in dots (GS h, 1-255; zero means
// 80), module width in dots (GS w, 2-6; zero means 2) and HRI position
// (GS H).
type BarcodeOptions struct {
	Height int
	Width  int
	HRI    HRI
}

func (b *Builder) barcodeSetup(o BarcodeOptions) *Builder {
	if o.Height == 0 {
		o.Height = 80
	}
	if o.Width == 0 {
		o.Width = 2
	}
	if o.Height < 1 || o.Height > 255 || o.Width < 2 || o.Width > 6 || o.HRI > HRIBoth {
		return b.fail(fmt.Errorf("escpos: barcode options %+v out of range", o))
	}
	return b.Raw(escGS, 'h', byte(o.Height), escGS, 'w', byte(o.Width), escGS, 'H', byte(o.HRI))
}

// Code128 prints data as a Code128 barcode in code set B (GS k 73 n; the
// data starts with "{B", a literal '{' is sent as "{{"; the printer adds
// the check character). data must be printable ASCII.
func (b *Builder) Code128(data string, o BarcodeOptions) *Builder {
	if data == "" {
		return b.fail(errors.New("escpos: empty Code128 data"))
	}
	enc := []byte("{B")
	for i := 0; i < len(data); i++ {
		c := data[i]
		if !printable(c) {
			return b.fail(fmt.Errorf("escpos: Code128 data %q: byte 0x%02x not printable", data, c))
		}
		enc = append(enc, c)
		if c == '{' {
			enc = append(enc, '{')
		}
	}
	if len(enc) > 255 {
		return b.fail(fmt.Errorf("escpos: Code128 data %q too long", data))
	}
	b.barcodeSetup(o)
	b.Raw(escGS, 'k', 73, byte(len(enc)))
	return b.Raw(enc...)
}

// EAN13 prints a 13-digit EAN (GS k 67 n). The check digit must be right.
func (b *Builder) EAN13(code string, o BarcodeOptions) *Builder {
	if k, err := Classify(code); k != KindEAN13 || err != nil {
		return b.fail(fmt.Errorf("escpos: %q is not a valid EAN-13 (%v)", code, err))
	}
	b.barcodeSetup(o)
	b.Raw(escGS, 'k', 67, 13)
	return b.Raw([]byte(code)...)
}

// QR prints data as a QR code (model 2, GS ( k functions 165, 167, 169,
// 180, 181): module size 1-16 dots (zero means 6), error correction
// level.
func (b *Builder) QR(data string, moduleSize int, level QRLevel) *Builder {
	if moduleSize == 0 {
		moduleSize = 6
	}
	if data == "" || len(data) > 7089 {
		return b.fail(fmt.Errorf("escpos: QR data of %d bytes", len(data)))
	}
	if moduleSize < 1 || moduleSize > 16 || level < QRLevelL || level > QRLevelH {
		return b.fail(fmt.Errorf("escpos: QR module %d level %d out of range", moduleSize, level))
	}
	b.Raw(escGS, '(', 'k', 4, 0, 49, 65, 50, 0)                  // model 2
	b.Raw(escGS, '(', 'k', 3, 0, 49, 67, byte(moduleSize))       // module size
	b.Raw(escGS, '(', 'k', 3, 0, 49, 69, byte(level))            // error correction
	n := len(data) + 3                                           // cn fn m + data
	b.Raw(escGS, '(', 'k', byte(n%256), byte(n/256), 49, 80, 48) // store
	b.Raw([]byte(data)...)
	return b.Raw(escGS, '(', 'k', 3, 0, 49, 81, 48) // print
}

func bit(on bool) byte {
	if on {
		return 1
	}
	return 0
}

// Real-time status requests (DLE EOT n) and the transmit-status request
// the driver uses as a "printed up to here" marker (GS r 1).
var (
	cmdStatusPrinter = []byte{escDLE, escEOT, 1}
	cmdStatusOffline = []byte{escDLE, escEOT, 2}
	cmdStatusPaper   = []byte{escDLE, escEOT, 4}
	cmdPaperSensor   = []byte{escGS, 'r', 1}
)

// encodeRune maps r into code page cp, or '?'.
func encodeRune(cp CodePage, r rune) byte {
	if r < 0x80 {
		return byte(r)
	}
	var table *[128]rune
	switch cp {
	case CodePagePC437:
		table = &cp437
	case CodePageWPC1252:
		table = &cp1252
	default:
		return '?'
	}
	for i, t := range table {
		if t == r {
			return byte(0x80 + i)
		}
	}
	return '?'
}

// CodePageRune returns the character byte c stands for in code page cp
// (PC437 or WPC1252), or 0 when the page or the byte is unknown.
func CodePageRune(cp CodePage, c byte) rune {
	if c < 0x80 {
		return rune(c)
	}
	switch cp {
	case CodePagePC437:
		return cp437[c-0x80]
	case CodePageWPC1252:
		return cp1252[c-0x80]
	}
	return 0
}

// textWidth is the number of columns s takes (one a rune).
func textWidth(s string) int { return utf8.RuneCountInString(s) }

// fit cuts s to n columns.
func fit(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if textWidth(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

// twoColumns lays out left and right on one line of width columns: left
// is cut short to leave right and a space.
func twoColumns(left, right string, width int) string {
	rw := textWidth(right)
	left = fit(left, width-rw-1)
	return left + strings.Repeat(" ", width-textWidth(left)-rw) + right
}

// wrap breaks text into lines of at most width columns at spaces.
func wrap(text string, width int) []string {
	var lines []string
	for _, para := range strings.Split(text, "\n") {
		line := ""
		for _, w := range strings.Fields(para) {
			for textWidth(w) > width {
				if line != "" {
					lines = append(lines, line)
					line = ""
				}
				r := []rune(w)
				lines = append(lines, string(r[:width]))
				w = string(r[width:])
			}
			switch {
			case line == "":
				line = w
			case textWidth(line)+1+textWidth(w) <= width:
				line += " " + w
			default:
				lines = append(lines, line)
				line = w
			}
		}
		lines = append(lines, line)
	}
	return lines
}

// cp437 and cp1252 map bytes 0x80-0xFF to Unicode.
var cp437 = [128]rune{
	'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å',
	'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ',
	'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»',
	'░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐',
	'└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧',
	'╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀',
	'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩',
	'≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u00a0',
}

var cp1252 = func() [128]rune {
	t := [128]rune{
		'€', 0, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0, 'Ž', 0,
		0, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0, 'ž', 'Ÿ',
	}
	for i := 0x20; i < 0x80; i++ {
		t[i] = rune(0x80 + i) // 0xA0-0xFF are Latin-1
	}
	return t
}()
