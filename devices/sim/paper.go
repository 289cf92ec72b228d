package sim

import "fmt"

// Style is the print mode a run of text was printed in.
type Style struct {
	Bold         bool // ESC E, ESC ! bit 3
	DoubleStrike bool // ESC G
	Underline    int  // ESC -, ESC ! bit 7: 0 off, 1 or 2 dots
	Reverse      bool // GS B
	FontB        bool // ESC M, ESC ! bit 0
	Width        int  // GS !, ESC ! bit 5: 1 to 8
	Height       int  // GS !, ESC ! bit 4: 1 to 8
	UpsideDown   bool // ESC {
	Rotated      bool // ESC V
}

// Align is a line's justification (ESC a).
type Align int

// Justifications.
const (
	AlignLeft Align = iota
	AlignCenter
	AlignRight
)

func (a Align) String() string {
	switch a {
	case AlignCenter:
		return "center"
	case AlignRight:
		return "right"
	}
	return "left"
}

// Run is text printed in one style.
type Run struct {
	Text  string
	Style Style
}

// ItemKind is what a printed item is.
type ItemKind int

// Item kinds.
const (
	ItemText    ItemKind = iota // a line of text (no runs: a blank line)
	ItemBarcode                 // a 1D barcode (GS k)
	ItemQR                      // a QR code (GS ( k)
	ItemImage                   // a raster or bit image (GS v 0, ESC *)
)

// Item is one thing printed across the paper: a line of text, a barcode,
// a QR code or an image.
type Item struct {
	Kind    ItemKind
	Align   Align
	Runs    []Run    // ItemText
	Barcode *Barcode // ItemBarcode
	QR      *QR      // ItemQR
	Image   *Image   // ItemImage
}

// Text returns the line's characters.
func (it Item) Text() string {
	s := ""
	for _, r := range it.Runs {
		s += r.Text
	}
	return s
}

// Barcode is a printed 1D barcode.
type Barcode struct {
	// Type as the command names it: "UPC-A", "EAN13", "EAN8", "CODE39",
	// "ITF", "CODABAR", "CODE93", "CODE128", ...
	Type string
	// Data is the encoded data as a scanner would read it (Code128 code
	// set selectors removed, code set C digits expanded, EAN check digit
	// added when the printer computes it).
	Data string
	// Raw is the data bytes as sent.
	Raw    []byte
	HRI    int // 0 none, 1 above, 2 below, 3 both
	Height int // dots
	Width  int // module width, dots
	// Err is set when the printer would reject the data (a wrong EAN check
	// digit): real printers then print nothing.
	Err string
}

// QR is a printed QR code.
type QR struct {
	Data   string
	Model  int  // 1 or 2
	Module int  // module size, dots
	Level  byte // 'L', 'M', 'Q', 'H'
}

// Image is a printed raster image, 1 bit a dot, rows of (Width+7)/8 bytes,
// most significant bit leftmost.
type Image struct {
	Width, Height int
	Bits          []byte
}

// End is how a receipt ended.
type End int

// Ends of a receipt.
const (
	EndOpen       End = iota // still printing (or never cut)
	EndFullCut               // GS V full cut
	EndPartialCut            // GS V partial cut
	EndTorn                  // the paper ran out while printing it
)

func (e End) String() string {
	switch e {
	case EndFullCut:
		return "full cut"
	case EndPartialCut:
		return "partial cut"
	case EndTorn:
		return "paper out: torn"
	}
	return "not cut"
}

// Receipt is the paper between two cuts.
type Receipt struct {
	Seq   int // 1, 2, ... in the order they left the printer
	Items []Item
	End   End
	// DrawerKicks counts cash drawer pulses sent while it printed.
	DrawerKicks int
}

// Complete reports whether the receipt was printed whole and cut.
func (r *Receipt) Complete() bool { return r.End == EndFullCut || r.End == EndPartialCut }

func (r *Receipt) String() string {
	return fmt.Sprintf("receipt %d (%d items, %s)", r.Seq, len(r.Items), r.End)
}

func (r *Receipt) clone() *Receipt {
	c := *r
	c.Items = append([]Item(nil), r.Items...)
	return &c
}
