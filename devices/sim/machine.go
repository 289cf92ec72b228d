package sim

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/endcap/endcap/devices"
)

// Control bytes.
const (
	nul = 0x00
	ht  = 0x09
	lf  = 0x0a
	ff  = 0x0c
	cr  = 0x0d
	dle = 0x10
	can = 0x18
	esc = 0x1b
	fs  = 0x1c
	gs  = 0x1d
	eot = 0x04
	enq = 0x05
	dc4 = 0x14
)

// maxCommand bounds a command's length; a longer announced length is
// taken for garbage.
const maxCommand = 1 << 20

// Machine is an ESC/POS printer as a state machine: Write it the bytes a
// host sends; it keeps the print modes, prints onto paper (Receipts), and
// returns the bytes the printer answers (status requests). It interprets
// the commands of Epson's ESC/POS reference that receipt printing uses,
// skips others it can size, and records what it does not know in
// Unknown.
//
// While the printer is not ready (paper out, cover open, offline) it still
// parses everything and answers real-time requests (DLE EOT), but prints
// nothing and answers no buffered request (GS r): the data of a job sent
// to a stopped printer is lost, as if the host had cleared the printer's
// buffer. A Machine is not safe for concurrent use.
type Machine struct {
	// Columns of Font A across the paper (12 dots each). Zero means 48.
	Columns int

	// Device state; change with the setters of Printer, or directly
	// between Writes.
	PaperOut     bool
	PaperNearEnd bool
	CoverOpen    bool
	Offline      bool
	// PaperLeft is how many more items (lines, barcodes) fit on the roll
	// before it runs out; negative means unlimited.
	PaperLeft int

	// Unknown lists commands the machine did not know, in hex.
	Unknown []string
	// Received counts bytes written.
	Received int64

	finished []*Receipt
	cur      *Receipt
	seq      int

	pending []byte
	reply   []byte

	style     Style
	align     Align
	codePage  byte
	line      *Item // text being gathered into a line
	lineDots  int
	barHeight int
	barWidth  int
	hri       int
	qrModel   int
	qrModule  int
	qrLevel   byte
	qrData    []byte
}

// NewMachine returns a ready printer with unlimited paper.
func NewMachine(columns int) *Machine {
	m := &Machine{Columns: columns, PaperLeft: -1}
	m.reset()
	return m
}

func (m *Machine) reset() {
	m.style = Style{Width: 1, Height: 1}
	m.align = AlignLeft
	m.codePage = 0
	m.line, m.lineDots = nil, 0
	m.barHeight, m.barWidth, m.hri = 162, 3, 0
	m.qrModel, m.qrModule, m.qrLevel, m.qrData = 2, 3, 'L', nil
}

func (m *Machine) columns() int {
	if m.Columns <= 0 {
		return 48
	}
	return m.Columns
}

// Ready reports whether the printer prints (paper in, cover shut, online).
func (m *Machine) Ready() bool { return !m.PaperOut && !m.CoverOpen && !m.Offline }

// Write feeds bytes from the host and returns what the printer answers.
func (m *Machine) Write(p []byte) []byte {
	m.Received += int64(len(p))
	m.pending = append(m.pending, p...)
	for len(m.pending) > 0 {
		n := commandLength(m.pending)
		if n > maxCommand {
			// An absurd announced length: garbage, not a command. Skip
			// its first two bytes rather than wait for megabytes.
			m.unknown(m.pending[:2])
			m.pending = m.pending[2:]
			continue
		}
		if n < 0 || n > len(m.pending) {
			break
		}
		m.exec(m.pending[:n])
		m.pending = m.pending[n:]
	}
	if len(m.pending) == 0 {
		m.pending = nil
	}
	out := m.reply
	m.reply = nil
	return out
}

// Receipts returns the receipts finished so far (cut or torn), oldest
// first. The machine keeps them; the slice is a copy.
func (m *Machine) Receipts() []*Receipt {
	out := make([]*Receipt, len(m.finished))
	for i, r := range m.finished {
		out[i] = r.clone()
	}
	return out
}

// Current returns the receipt being printed (items since the last cut),
// or nil.
func (m *Machine) Current() *Receipt {
	if m.cur == nil {
		return nil
	}
	return m.cur.clone()
}

// TakeReceipts returns the finished receipts and forgets them.
func (m *Machine) TakeReceipts() []*Receipt {
	out := m.finished
	m.finished = nil
	return out
}

// SetPaperOut empties the roll (true) or loads a new one (false). A
// receipt being printed when the paper runs out is torn off unfinished.
func (m *Machine) SetPaperOut(out bool) {
	m.PaperOut = out
	if out {
		m.tear()
	} else if m.PaperLeft == 0 {
		m.PaperLeft = -1
	}
}

// SetCoverOpen opens or shuts the cover. Opening it mid-receipt stops the
// receipt there.
func (m *Machine) SetCoverOpen(open bool) {
	m.CoverOpen = open
	if open {
		m.tear()
	}
}

// SetOffline takes the printer offline (it stops mid-receipt) or back.
func (m *Machine) SetOffline(off bool) {
	m.Offline = off
	if off {
		m.tear()
	}
}

func (m *Machine) tear() {
	m.line, m.lineDots = nil, 0
	if m.cur != nil {
		m.cur.End = EndTorn
		m.finished = append(m.finished, m.cur)
		m.cur = nil
	}
}

// StatusByte is the answer to DLE EOT n, and ok false for an n the machine
// does not answer.
func (m *Machine) StatusByte(n byte) (b byte, ok bool) {
	const fixed = 0x12 // bits 1 and 4 are always set
	switch n {
	case 1: // printer status: bit 3 offline
		b = fixed
		if !m.Ready() {
			b |= 0x08
		}
	case 2: // offline cause: bit 2 cover open, bit 5 stopped at paper end
		b = fixed
		if m.CoverOpen {
			b |= 0x04
		}
		if m.PaperOut {
			b |= 0x20
		}
	case 3: // error cause: none simulated
		b = fixed
	case 4: // roll paper sensor: bits 2-3 near end, bits 5-6 paper not present
		b = fixed
		if m.PaperNearEnd || m.PaperOut {
			b |= 0x0c
		}
		if m.PaperOut {
			b |= 0x60
		}
	default:
		return 0, false
	}
	return b, true
}

// commandLength returns how many bytes the command at the start of p
// takes, or -1 when more bytes are needed to tell.
func commandLength(p []byte) int {
	c := p[0]
	if c >= 0x20 {
		// A run of text.
		n := 1
		for n < len(p) && p[n] >= 0x20 {
			n++
		}
		return n
	}
	if c != dle && c != esc && c != gs && c != fs {
		return 1
	}
	if len(p) < 2 {
		return -1
	}
	at := func(i int) int {
		if i < len(p) {
			return int(p[i])
		}
		return -1
	}
	need := func(fixed int, lenAt ...int) int {
		// fixed bytes, plus a little-endian length at the given indexes.
		for _, i := range lenAt {
			if at(i) < 0 {
				return -1
			}
		}
		n := 0
		for k := len(lenAt) - 1; k >= 0; k-- {
			n = n*256 + at(lenAt[k])
		}
		return fixed + n
	}
	untilNUL := func(from, max int) int {
		for i := from; i < len(p) && i < from+max; i++ {
			if p[i] == nul {
				return i + 1
			}
		}
		if len(p) >= from+max {
			return from + max
		}
		return -1
	}
	c1 := p[1]
	switch c {
	case dle:
		switch c1 {
		case eot:
			switch at(2) {
			case -1:
				return -1
			case 7, 8, 18:
				return 4 // DLE EOT n a
			}
			return 3
		case enq:
			return 3
		case dc4:
			switch at(2) {
			case -1:
				return -1
			case 1, 2:
				return 5 // DLE DC4 1 m t (pulse), DLE DC4 2 1 8 (power off)
			case 7:
				return 4
			case 8:
				return 10 // DLE DC4 8 d1..d7 (clear buffers)
			}
			return 3
		}
		return 2
	case esc:
		switch c1 {
		case '@', '2', '<', 'L', 'S', 'i', 'm', ff:
			return 2
		case ' ', '!', '-', '3', '=', '?', 'E', 'G', 'J', 'M', 'R', 'T', 'U', 'V', 'a', 'd', 'e', 'r', 't', 'u', '{', 'K', 'c':
			if c1 == 'c' {
				return 4 // ESC c 3 n, ESC c 4 n, ESC c 5 n
			}
			return 3
		case '$', '\\', 'B':
			return 4
		case 'p':
			return 5
		case 'W':
			return 10
		case 'D':
			return untilNUL(2, 33)
		case '*': // ESC * m nL nH d1...dk
			m, nl, nh := at(2), at(3), at(4)
			if nh < 0 {
				return -1
			}
			k := nl + nh*256
			if m == 32 || m == 33 {
				k *= 3
			}
			return 5 + k
		}
		return 2
	case gs:
		switch c1 {
		case '!', 'B', 'H', 'I', 'a', 'b', 'f', 'h', 'r', 'w', '/', 'j', 'g':
			return 3
		case 'L', 'W', 'P', '$', '\\':
			return 4
		case 'V':
			switch at(2) {
			case -1:
				return -1
			case 0, 1, 48, 49:
				return 3
			}
			return 4
		case 'k':
			m := at(2)
			if m < 0 {
				return -1
			}
			if m <= 6 {
				return untilNUL(3, 256)
			}
			return need(4, 3)
		case '(':
			return need(5, 3, 4)
		case '8':
			return need(7, 3, 4, 5, 6)
		case 'v': // GS v 0 m xL xH yL yH d...
			if at(7) < 0 {
				return -1
			}
			return 8 + (at(4)+at(5)*256)*(at(6)+at(7)*256)
		case '*': // GS * x y d...
			if at(3) < 0 {
				return -1
			}
			return 4 + at(2)*at(3)*8
		}
		return 2
	case fs:
		switch c1 {
		case '.', '&':
			return 2
		case '!', '-', 'C', 'W':
			return 3
		case 'p', 'S':
			return 4
		}
		return 2
	}
	return 1
}

func (m *Machine) unknown(cmd []byte) {
	if len(cmd) > 12 {
		cmd = cmd[:12]
	}
	m.Unknown = append(m.Unknown, fmt.Sprintf("% x", cmd))
}

// exec runs one complete command.
func (m *Machine) exec(cmd []byte) {
	c := cmd[0]
	// Real-time commands run whatever the printer's state.
	if c == dle {
		m.realTime(cmd)
		return
	}
	if !m.Ready() {
		return // a stopped printer prints nothing
	}
	if c >= 0x20 {
		m.text(cmd)
		return
	}
	switch c {
	case lf:
		m.newline()
		return
	case cr, nul, can:
		return
	case ht:
		m.text([]byte{' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '})
		return
	case ff:
		m.newline()
		return
	case esc:
		m.escCommand(cmd)
		return
	case gs:
		m.gsCommand(cmd)
		return
	case fs:
		return // kanji and NV image commands: sized and skipped
	}
	m.unknown(cmd)
}

func (m *Machine) realTime(cmd []byte) {
	switch cmd[1] {
	case eot:
		if b, ok := m.StatusByte(cmd[2]); ok {
			m.reply = append(m.reply, b)
		}
	case enq, dc4:
		if len(cmd) >= 5 && cmd[1] == dc4 && cmd[2] == 1 && m.Ready() && m.cur != nil {
			m.cur.DrawerKicks++
		}
	default:
		m.unknown(cmd)
	}
}

func (m *Machine) escCommand(cmd []byte) {
	arg := func() byte { return cmd[2] }
	switch cmd[1] {
	case '@':
		m.reset()
	case 'E':
		m.style.Bold = arg()&1 == 1
	case 'G':
		m.style.DoubleStrike = arg()&1 == 1
	case '-':
		switch arg() {
		case 0, '0':
			m.style.Underline = 0
		case 1, '1':
			m.style.Underline = 1
		case 2, '2':
			m.style.Underline = 2
		}
	case '!':
		n := arg()
		m.style.FontB = n&0x01 != 0
		m.style.Bold = n&0x08 != 0
		m.style.Height = 1 + int(n>>4&1)
		m.style.Width = 1 + int(n>>5&1)
		m.style.Underline = int(n >> 7 & 1)
	case 'M':
		m.style.FontB = arg() == 1 || arg() == '1'
	case 'a':
		switch arg() {
		case 0, '0':
			m.setAlign(AlignLeft)
		case 1, '1':
			m.setAlign(AlignCenter)
		case 2, '2':
			m.setAlign(AlignRight)
		}
	case 't':
		m.codePage = arg()
	case '{':
		m.style.UpsideDown = arg()&1 == 1
	case 'V':
		m.style.Rotated = arg() == 1 || arg() == '1'
	case 'd':
		m.feedLines(int(arg()))
	case 'J':
		m.feedDots(int(arg()))
	case 'p':
		if m.cur == nil {
			m.cur = m.newReceipt()
		}
		m.cur.DrawerKicks++
	case 'i':
		m.cut(EndFullCut)
	case 'm':
		m.cut(EndPartialCut)
	case '*':
		m.bitImage(cmd)
	case '2', '3', ' ', 'R', 'D', '$', '\\', 'c', 'U', '=', 'L', 'S', 'T', 'W', 'r', 'u', 'B', 'e', 'K', '<', '?':
		// Spacing, positions, character sets, sensors, page mode, buzzer:
		// no effect on what the receipt says.
	default:
		m.unknown(cmd)
	}
}

func (m *Machine) gsCommand(cmd []byte) {
	switch cmd[1] {
	case '!':
		n := cmd[2]
		m.style.Width = 1 + int(n>>4&7)
		m.style.Height = 1 + int(n&7)
	case 'B':
		m.style.Reverse = cmd[2]&1 == 1
	case 'h':
		if cmd[2] >= 1 {
			m.barHeight = int(cmd[2])
		}
	case 'w':
		if cmd[2] >= 1 && cmd[2] <= 6 { // out of range: ignored
			m.barWidth = int(cmd[2])
		}
	case 'H':
		m.hri = int(cmd[2] & 3)
	case 'V':
		if cmd[2] == 0 || cmd[2] == 48 || cmd[2] == 65 || cmd[2] == 97 || cmd[2] == 103 {
			m.cut(EndFullCut)
		} else {
			m.cut(EndPartialCut)
		}
	case 'k':
		m.barcode(cmd)
	case '(':
		if cmd[2] == 'k' {
			m.qrCommand(cmd)
		}
	case 'v':
		m.raster(cmd)
	case 'r':
		m.transmitStatus(cmd[2])
	case 'f', 'a', 'b', 'I', 'L', 'W', 'P', '$', '\\', '/', '*', '8', 'j', 'g':
		// HRI font, ASB, smoothing, ID, margins, motion units, NV and
		// download graphics: no effect here.
	default:
		m.unknown(cmd)
	}
}

// transmitStatus answers GS r n. It is processed in buffer order: a
// printer that has stopped never gets to it.
func (m *Machine) transmitStatus(n byte) {
	switch n {
	case 1, 49: // paper sensor: bits 0-1 near end, bits 2-3 paper end
		var b byte
		if m.PaperNearEnd {
			b |= 0x03
		}
		m.reply = append(m.reply, b)
	case 2, 50: // drawer kick connector: bit 0
		m.reply = append(m.reply, 0)
	}
}

func (m *Machine) setAlign(a Align) {
	m.align = a
	if m.line != nil && len(m.line.Runs) == 0 {
		m.line.Align = a
	}
}

func (m *Machine) newReceipt() *Receipt {
	m.seq++
	return &Receipt{Seq: m.seq}
}

// charDots is the width of one character in the current style.
func (m *Machine) charDots() int {
	w := 12
	if m.style.FontB {
		w = 9
	}
	return w * max(1, m.style.Width)
}

func (m *Machine) text(p []byte) {
	for _, c := range p {
		r := decodeChar(m.codePage, c)
		w := m.charDots()
		if m.line != nil && m.lineDots+w > m.columns()*12 {
			m.newline() // the printer wraps at the right margin
		}
		if m.line == nil {
			m.line = &Item{Kind: ItemText, Align: m.align}
		}
		runs := m.line.Runs
		if n := len(runs); n > 0 && runs[n-1].Style == m.style {
			runs[n-1].Text += string(r)
		} else {
			m.line.Runs = append(runs, Run{Text: string(r), Style: m.style})
		}
		m.lineDots += w
	}
}

// decodeChar maps a byte of code page n to a character.
func decodeChar(page, c byte) rune {
	if c < 0x80 {
		return rune(c)
	}
	switch page {
	case byte(devices.CodePagePC437), byte(devices.CodePageWPC1252):
		if r := devices.CodePageRune(devices.CodePage(page), c); r != 0 {
			return r
		}
	}
	return '?'
}

// newline prints the line gathered (LF): an empty one feeds a blank line.
func (m *Machine) newline() {
	it := m.line
	if it == nil {
		it = &Item{Kind: ItemText, Align: m.align}
	}
	m.line, m.lineDots = nil, 0
	m.print(*it)
}

// flushLine prints a line in progress, if any.
func (m *Machine) flushLine() {
	if m.line != nil {
		m.newline()
	}
}

// print puts an item on the paper, or tears the receipt when the paper
// runs out.
func (m *Machine) print(it Item) {
	if !m.Ready() {
		return
	}
	if m.PaperLeft == 0 {
		m.PaperOut = true
		m.tear()
		return
	}
	if m.PaperLeft > 0 {
		m.PaperLeft--
	}
	if m.cur == nil {
		m.cur = m.newReceipt()
	}
	m.cur.Items = append(m.cur.Items, it)
}

func (m *Machine) feedLines(n int) {
	if m.line != nil {
		m.newline()
		n--
	}
	for ; n > 0; n-- {
		m.newline()
	}
}

func (m *Machine) feedDots(n int) {
	m.flushLine()
	for ; n >= 24; n -= 30 {
		m.newline()
	}
}

func (m *Machine) cut(e End) {
	m.flushLine()
	if !m.Ready() || m.cur == nil {
		return
	}
	m.cur.End = e
	m.finished = append(m.finished, m.cur)
	m.cur = nil
}

var barcodeTypes = map[byte]string{
	0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR",
	65: "UPC-A", 66: "UPC-E", 67: "EAN13", 68: "EAN8", 69: "CODE39", 70: "ITF", 71: "CODABAR",
	72: "CODE93", 73: "CODE128", 74: "GS1-128", 75: "GS1 DataBar Omnidirectional",
	76: "GS1 DataBar Truncated", 77: "GS1 DataBar Limited", 78: "GS1 DataBar Expanded", 79: "CODE128 auto",
}

func (m *Machine) barcode(cmd []byte) {
	kind := cmd[2]
	var data []byte
	if kind <= 6 {
		data = bytes.TrimSuffix(cmd[3:], []byte{nul})
	} else {
		data = cmd[4:]
	}
	name, ok := barcodeTypes[kind]
	if !ok {
		m.unknown(cmd)
		return
	}
	b := &Barcode{Type: name, Raw: append([]byte(nil), data...), HRI: m.hri, Height: m.barHeight, Width: m.barWidth}
	switch name {
	case "CODE128":
		b.Data, b.Err = decodeCode128(data)
	case "EAN13", "UPC-A", "EAN8":
		want := map[string]int{"EAN13": 13, "UPC-A": 12, "EAN8": 8}[name]
		s := string(data)
		switch {
		case len(s) == want-1 && isDigits(s):
			s += string(devices.EANCheckDigit(s))
		case len(s) == want && isDigits(s):
			if devices.EANCheckDigit(s[:want-1]) != s[want-1] {
				b.Err = "check digit mismatch"
			}
		default:
			b.Err = fmt.Sprintf("%d characters, want %d or %d digits", len(s), want-1, want)
		}
		b.Data = s
	default:
		b.Data = string(data)
	}
	m.flushLine()
	m.print(Item{Kind: ItemBarcode, Align: m.align, Barcode: b})
}

// decodeCode128 reads GS k 73 data: "{A", "{B" or "{C" selects the code
// set, "{{" is '{', "{1" FNC1 (shown as nothing), "{S" shifts one
// character; in code set C each byte is a pair of digits.
func decodeCode128(data []byte) (string, string) {
	if len(data) < 2 || data[0] != '{' || (data[1] != 'A' && data[1] != 'B' && data[1] != 'C') {
		return string(data), "Code128 data must start with {A, {B or {C"
	}
	var sb strings.Builder
	set := data[1]
	for i := 2; i < len(data); i++ {
		c := data[i]
		if c == '{' && i+1 < len(data) {
			i++
			switch n := data[i]; n {
			case 'A', 'B', 'C':
				set = n
			case '{':
				sb.WriteByte('{')
			case 'S', '1', '2', '3', '4':
			}
			continue
		}
		if set == 'C' {
			fmt.Fprintf(&sb, "%02d", c)
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String(), ""
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// qrCommand runs GS ( k pL pH cn fn ... for cn 49 (QR code).
func (m *Machine) qrCommand(cmd []byte) {
	if len(cmd) < 7 || cmd[5] != 49 {
		m.unknown(cmd)
		return
	}
	args := cmd[7:]
	switch cmd[6] {
	case 65: // select model: n1 = 49 model 1, 50 model 2
		if len(args) >= 1 {
			m.qrModel = int(args[0]) - 48
		}
	case 67: // module size 1-16; out of range: ignored
		if len(args) >= 1 && args[0] >= 1 && args[0] <= 16 {
			m.qrModule = int(args[0])
		}
	case 69: // error correction level 48-51
		if len(args) >= 1 && args[0] >= 48 && args[0] <= 51 {
			m.qrLevel = "LMQH"[args[0]-48]
		}
	case 80: // store data: m (48) d1...dk
		if len(args) >= 1 {
			m.qrData = append([]byte(nil), args[1:]...)
		}
	case 81: // print the stored symbol
		m.flushLine()
		m.print(Item{Kind: ItemQR, Align: m.align, QR: &QR{Data: string(m.qrData), Model: m.qrModel, Module: m.qrModule, Level: m.qrLevel}})
	case 82: // transmit size information: not simulated
	default:
		m.unknown(cmd)
	}
}

// raster prints GS v 0 m xL xH yL yH d1...dk.
func (m *Machine) raster(cmd []byte) {
	if cmd[2] != '0' && cmd[2] != 0 {
		m.unknown(cmd)
		return
	}
	wb := int(cmd[4]) + int(cmd[5])*256
	h := int(cmd[6]) + int(cmd[7])*256
	m.flushLine()
	m.print(Item{Kind: ItemImage, Align: m.align, Image: &Image{Width: wb * 8, Height: h, Bits: append([]byte(nil), cmd[8:]...)}})
}

// bitImage prints ESC * m nL nH d1...dk as an image of one band.
func (m *Machine) bitImage(cmd []byte) {
	mode := cmd[2]
	n := int(cmd[3]) + int(cmd[4])*256
	rows := 8
	if mode == 32 || mode == 33 {
		rows = 24
	}
	data := cmd[5:]
	img := &Image{Width: n, Height: rows, Bits: make([]byte, (n+7)/8*rows)}
	bpc := rows / 8 // bytes per column
	for x := 0; x < n; x++ {
		for y := 0; y < rows; y++ {
			if data[x*bpc+y/8]&(0x80>>(y%8)) != 0 {
				img.Bits[y*((n+7)/8)+x/8] |= 0x80 >> (x % 8)
			}
		}
	}
	m.flushLine()
	m.print(Item{Kind: ItemImage, Align: m.align, Image: img})
}
