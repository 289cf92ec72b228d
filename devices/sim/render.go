package sim

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// Text renders the receipt as text, columns wide (zero means 48), for
// people and golden files: each printed line between bars, laid out as
// on paper (a double-width character takes two columns), followed by the
// styles it was printed in; barcodes and QR codes as [TYPE data]; the end
// of the receipt (cut or torn) as the bottom border.
func (r *Receipt) Text(columns int) string {
	if columns <= 0 {
		columns = 48
	}
	var sb strings.Builder
	border := func(label string) {
		if label == "" {
			sb.WriteString("+" + strings.Repeat("-", columns) + "+\n")
			return
		}
		label = " " + label + " "
		left := (columns - utf8.RuneCountInString(label)) / 2
		right := columns - left - utf8.RuneCountInString(label)
		sb.WriteString("+" + strings.Repeat("-", max(0, left)) + label + strings.Repeat("-", max(0, right)) + "+\n")
	}
	row := func(content string, width int, a Align, tags []string) {
		pad := 0
		switch a {
		case AlignCenter:
			pad = (columns - width) / 2
		case AlignRight:
			pad = columns - width
		}
		pad = max(0, pad)
		line := strings.Repeat(" ", pad) + content + strings.Repeat(" ", max(0, columns-pad-width))
		sb.WriteString("|" + line + "|")
		if len(tags) > 0 {
			sb.WriteString(" " + strings.Join(tags, " "))
		}
		sb.WriteString("\n")
	}
	border("")
	for _, it := range r.Items {
		switch it.Kind {
		case ItemText:
			var content strings.Builder
			width := 0
			for _, run := range it.Runs {
				w := max(1, run.Style.Width)
				for _, c := range run.Text {
					content.WriteRune(c)
					content.WriteString(strings.Repeat(" ", w-1))
					width += w
				}
			}
			row(content.String(), width, it.Align, styleTags(it.Runs))
		case ItemBarcode:
			b := it.Barcode
			s := fmt.Sprintf("[%s %s]", b.Type, b.Data)
			tags := []string{fmt.Sprintf("h%d w%d", b.Height, b.Width)}
			if b.Err != "" {
				tags = append(tags, "ERROR: "+b.Err)
			}
			if b.HRI == 1 || b.HRI == 3 {
				row(b.Data, utf8.RuneCountInString(b.Data), it.Align, []string{"hri"})
			}
			row(s, utf8.RuneCountInString(s), it.Align, tags)
			if b.HRI == 2 || b.HRI == 3 {
				row(b.Data, utf8.RuneCountInString(b.Data), it.Align, []string{"hri"})
			}
		case ItemQR:
			q := it.QR
			s := fmt.Sprintf("[QR %s]", q.Data)
			row(s, utf8.RuneCountInString(s), it.Align, []string{fmt.Sprintf("model%d module%d level%c", q.Model, q.Module, q.Level)})
		case ItemImage:
			s := fmt.Sprintf("[image %dx%d]", it.Image.Width, it.Image.Height)
			row(s, len(s), it.Align, nil)
		}
	}
	end := r.End.String()
	if r.DrawerKicks > 0 {
		end += fmt.Sprintf(", drawer kick x%d", r.DrawerKicks)
	}
	border(end)
	return sb.String()
}

// styleTags names the styles used on a line, in a fixed order.
func styleTags(runs []Run) []string {
	set := map[string]bool{}
	for _, r := range runs {
		s := r.Style
		if strings.TrimSpace(r.Text) == "" && !s.Reverse && s.Underline == 0 {
			continue // spaces show no bold or size
		}
		if s.Bold {
			set["bold"] = true
		}
		if s.DoubleStrike {
			set["dstrike"] = true
		}
		if s.Underline > 0 {
			set[fmt.Sprintf("ul%d", s.Underline)] = true
		}
		if s.Reverse {
			set["reverse"] = true
		}
		if s.FontB {
			set["fontB"] = true
		}
		if s.Width > 1 || s.Height > 1 {
			set[fmt.Sprintf("%dx%d", max(1, s.Width), max(1, s.Height))] = true
		}
		if s.UpsideDown {
			set["upside-down"] = true
		}
		if s.Rotated {
			set["rotated"] = true
		}
	}
	tags := make([]string, 0, len(set))
	for t := range set {
		tags = append(tags, t)
	}
	order := func(t string) int {
		switch {
		case t == "bold":
			return 0
		case t[0] >= '1' && t[0] <= '8':
			return 1
		}
		return 2
	}
	sort.Slice(tags, func(i, j int) bool {
		oi, oj := order(tags[i]), order(tags[j])
		if oi != oj {
			return oi < oj
		}
		return tags[i] < tags[j]
	})
	return tags
}

// Rendering to an image: one pixel a printer dot.
const (
	pngMargin      = 16
	lineSpacing    = 6     // dots between text lines
	maxImageHeight = 40000 // dots: 5 m of paper at 8 dots/mm
)

var (
	ink   = color.Gray{Y: 0}
	paper = color.Gray{Y: 255}
)

// WritePNG renders the receipt as a PNG, one pixel a dot, columns of Font
// A wide (zero means 48). EAN/UPC and Code128 barcodes are drawn as real
// bars; QR codes as a labelled placeholder of the right size.
func (r *Receipt) WritePNG(w io.Writer, columns int) error {
	return png.Encode(w, r.Image(columns))
}

// Image renders the receipt (see WritePNG).
func (r *Receipt) Image(columns int) image.Image {
	if columns <= 0 {
		columns = 48
	}
	width := columns * 12
	// Lay out first to know the height.
	height := pngMargin
	items := r.Items
	for i, it := range items {
		if height+itemHeight(it) > maxImageHeight {
			items = items[:i] // a receipt longer than 5 m of paper: cut short
			break
		}
		height += itemHeight(it)
	}
	height += pngMargin + 8
	img := image.NewGray(image.Rect(0, 0, width+2*pngMargin, height))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	y := pngMargin
	for _, it := range items {
		drawItem(img, it, pngMargin, y, width)
		y += itemHeight(it)
	}
	// The end: a dashed cut line, or a ragged tear.
	y += 4
	for x := 0; x < img.Bounds().Dx(); x++ {
		switch r.End {
		case EndTorn:
			img.SetGray(x, y+(x/3)%4, ink)
		case EndFullCut, EndPartialCut:
			if (x/6)%2 == 0 {
				img.SetGray(x, y, ink)
			}
		}
	}
	return img
}

func lineHeight(runs []Run) int {
	h := 24
	for _, r := range runs {
		ch := 24
		if r.Style.FontB {
			ch = 17
		}
		h = max(h, ch*max(1, r.Style.Height))
	}
	return h
}

func itemHeight(it Item) int {
	switch it.Kind {
	case ItemText:
		return lineHeight(it.Runs) + lineSpacing
	case ItemBarcode:
		h := min(it.Barcode.Height, 400) + 8
		if it.Barcode.HRI&1 != 0 {
			h += 24
		}
		if it.Barcode.HRI&2 != 0 {
			h += 24
		}
		return h
	case ItemQR:
		return qrPixels(it.QR) + 8 + 24
	case ItemImage:
		return it.Image.Height + lineSpacing
	}
	return 0
}

func alignX(a Align, x0, width, w int) int {
	switch a {
	case AlignCenter:
		return x0 + max(0, (width-w)/2)
	case AlignRight:
		return x0 + max(0, width-w)
	}
	return x0
}

func drawItem(img *image.Gray, it Item, x0, y, width int) {
	switch it.Kind {
	case ItemText:
		h := lineHeight(it.Runs)
		w := 0
		for _, r := range it.Runs {
			w += utf8.RuneCountInString(r.Text) * cellWidth(r.Style)
		}
		x := alignX(it.Align, x0, width, w)
		for _, r := range it.Runs {
			for _, c := range r.Text {
				drawChar(img, c, x, y+h, r.Style)
				x += cellWidth(r.Style)
			}
		}
	case ItemBarcode:
		drawBarcode(img, it, x0, y, width)
	case ItemQR:
		drawQR(img, it, x0, y, width)
	case ItemImage:
		im := it.Image
		x := alignX(it.Align, x0, width, im.Width)
		stride := (im.Width + 7) / 8
		for yy := 0; yy < im.Height; yy++ {
			for xx := 0; xx < im.Width; xx++ {
				i := yy*stride + xx/8
				if i < len(im.Bits) && im.Bits[i]&(0x80>>(xx%8)) != 0 {
					img.SetGray(x+xx, y+yy, ink)
				}
			}
		}
	}
}

func cellWidth(s Style) int {
	w := 12
	if s.FontB {
		w = 9
	}
	return w * max(1, s.Width)
}

// drawChar draws c with its cell's bottom-left corner at (x, base).
func drawChar(img *image.Gray, c rune, x, base int, s Style) {
	cw := cellWidth(s)
	chH := 24
	sx, sy := 2, 3 // the 5x7 glyph in a 12x24 cell
	if s.FontB {
		chH, sx, sy = 17, 1, 2
	}
	sx *= max(1, s.Width)
	sy *= max(1, s.Height)
	ch := chH * max(1, s.Height)
	top := base - ch
	fg := ink
	if s.Reverse {
		fg = paper
		fill(img, x, top, cw, ch, ink)
	}
	g := glyph(c)
	gx := x + (cw-5*sx)/2
	gy := top + (ch-7*sy)/2
	for row := 0; row < 7; row++ {
		for col := 0; col < 5; col++ {
			if g[row]&(0x10>>col) == 0 {
				continue
			}
			w := sx
			if s.Bold || s.DoubleStrike {
				w++
			}
			fill(img, gx+col*sx, gy+row*sy, w, sy, fg)
		}
	}
	if s.Underline > 0 {
		fill(img, x, base-s.Underline, cw, s.Underline, fg)
	}
}

func fill(img *image.Gray, x, y, w, h int, c color.Gray) {
	for yy := y; yy < y+h; yy++ {
		for xx := x; xx < x+w; xx++ {
			img.SetGray(xx, yy, c)
		}
	}
}

// latin folds the accented letters of Latin-1 to the ASCII the font has.
var latin = map[rune]rune{
	'à': 'a', 'á': 'a', 'â': 'a', 'ã': 'a', 'ä': 'a', 'å': 'a', 'ç': 'c', 'è': 'e', 'é': 'e', 'ê': 'e', 'ë': 'e',
	'ì': 'i', 'í': 'i', 'î': 'i', 'ï': 'i', 'ñ': 'n', 'ò': 'o', 'ó': 'o', 'ô': 'o', 'õ': 'o', 'ö': 'o', 'ø': 'o',
	'ù': 'u', 'ú': 'u', 'û': 'u', 'ü': 'u', 'ý': 'y', 'ÿ': 'y', 'À': 'A', 'Á': 'A', 'Â': 'A', 'Ã': 'A', 'Ä': 'A',
	'Å': 'A', 'Ç': 'C', 'È': 'E', 'É': 'E', 'Ê': 'E', 'Ë': 'E', 'Ì': 'I', 'Í': 'I', 'Î': 'I', 'Ï': 'I', 'Ñ': 'N',
	'Ò': 'O', 'Ó': 'O', 'Ô': 'O', 'Õ': 'O', 'Ö': 'O', 'Ø': 'O', 'Ù': 'U', 'Ú': 'U', 'Û': 'U', 'Ü': 'U', 'Ý': 'Y',
	'ß': 's', '€': 'E', '£': 'L', '\u00a0': ' ', '×': 'x', '—': '-', '–': '-', '‘': '\'', '’': '\'', '“': '"', '”': '"',
}

func glyph(c rune) [7]byte {
	if f, ok := latin[c]; ok {
		c = f
	}
	if c < 0x20 || c > 0x7e {
		c = '?'
	}
	return font5x7[c-0x20]
}

func drawText(img *image.Gray, s string, a Align, x0, base, width int, st Style) {
	w := utf8.RuneCountInString(s) * cellWidth(st)
	x := alignX(a, x0, width, w)
	for _, c := range s {
		drawChar(img, c, x, base, st)
		x += cellWidth(st)
	}
}

func drawBarcode(img *image.Gray, it Item, x0, y, width int) {
	b := it.Barcode
	var mods []bool
	var err error
	switch b.Type {
	case "CODE128":
		mods, err = code128Modules(b.Data)
	case "EAN13", "EAN8", "UPC-A":
		mods, err = eanModules(b.Data)
	default:
		err = fmt.Errorf("%s not drawn", b.Type)
	}
	mw := min(max(1, b.Width), 6)
	h := min(b.Height, 400)
	small := Style{FontB: true, Width: 1, Height: 1}
	if b.HRI&1 != 0 {
		drawText(img, b.Data, it.Align, x0, y+20, width, small)
		y += 24
	}
	if err != nil || b.Err != "" {
		// A labelled box stands in.
		label := b.Type + " " + b.Data
		bw := min(width, (utf8.RuneCountInString(label)+2)*9)
		x := alignX(it.Align, x0, width, bw)
		box(img, x, y, bw, h)
		drawText(img, label, AlignLeft, x+9, y+h/2+8, bw, small)
	} else {
		bw := len(mods) * mw
		if bw > width {
			mw = 1
			bw = len(mods)
		}
		x := alignX(it.Align, x0, width, bw)
		for i, dark := range mods {
			if dark {
				fill(img, x+i*mw, y, mw, h, ink)
			}
		}
	}
	y += h + 4
	if b.HRI&2 != 0 {
		drawText(img, b.Data, it.Align, x0, y+20, width, small)
	}
}

func box(img *image.Gray, x, y, w, h int) {
	fill(img, x, y, w, 2, ink)
	fill(img, x, y+h-2, w, 2, ink)
	fill(img, x, y, 2, h, ink)
	fill(img, x+w-2, y, 2, h, ink)
}

// qrModules estimates the symbol size in modules: the smallest version
// whose byte-mode capacity at level M holds the data.
func qrModules(q *QR) int {
	caps := []int{14, 26, 42, 62, 84, 106, 122, 152, 180, 213, 251, 287, 331, 362, 412, 450, 504, 560, 624, 666}
	for v, c := range caps {
		if len(q.Data) <= c {
			return 21 + 4*v
		}
	}
	return 21 + 4*len(caps)
}

func qrPixels(q *QR) int { return qrModules(q) * qrModule(q) }

func qrModule(q *QR) int { return min(max(1, q.Module), 16) }

func drawQR(img *image.Gray, it Item, x0, y, width int) {
	q := it.QR
	mod := qrModule(q)
	n := qrModules(q)
	size := n * mod
	x := alignX(it.Align, x0, width, size)
	box(img, x, y, size, size)
	finder := func(fx, fy int) {
		fill(img, fx, fy, 7*mod, 7*mod, ink)
		fill(img, fx+mod, fy+mod, 5*mod, 5*mod, paper)
		fill(img, fx+2*mod, fy+2*mod, 3*mod, 3*mod, ink)
	}
	finder(x, y)
	finder(x+size-7*mod, y)
	finder(x, y+size-7*mod)
	small := Style{FontB: true, Width: 1, Height: 1}
	drawText(img, "QR", AlignLeft, x+size/2-9, y+size/2+8, size, small)
	label := q.Data
	if lim := width / 9; utf8.RuneCountInString(label) > lim {
		label = string([]rune(label)[:lim])
	}
	drawText(img, label, it.Align, x0, y+size+4+20, width, small)
}
