package sim

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBarPatterns(t *testing.T) {
	for i, w := range code128Widths {
		sum := 0
		for _, c := range w {
			sum += int(c - '0')
		}
		want := 11
		if i == 106 {
			want = 13
		}
		if sum != want {
			t.Errorf("code128 symbol %d %q: %d modules, want %d", i, w, sum, want)
		}
	}
	seen := map[string]int{}
	for i, w := range code128Widths {
		if j, dup := seen[w]; dup {
			t.Errorf("code128 symbols %d and %d share pattern %s", j, i, w)
		}
		seen[w] = i
	}
	mods, err := code128Modules("No.123456")
	// start + 9 data + check = 11 symbols of 11 modules, stop 13.
	if err != nil || len(mods) != 11*11+13 {
		t.Errorf("code128 modules %d, %v", len(mods), err)
	}
	for _, c := range []struct {
		data string
		n    int
	}{{"4965957073797", 95}, {"012345678905", 95}, {"96385074", 67}} {
		mods, err := eanModules(c.data)
		if err != nil || len(mods) != c.n {
			t.Errorf("ean %s: %d modules, %v", c.data, len(mods), err)
		}
	}
	for i := range 10 {
		for j, set := range [][10]string{eanL, eanG, eanR} {
			if len(set[i]) != 7 {
				t.Errorf("ean set %d digit %d: %q", j, i, set[i])
			}
		}
	}
}

// TestPNGBarcodesScan renders barcodes and reads them back with zbarimg
// (zbar-tools), when it is installed.
func TestPNGBarcodesScan(t *testing.T) {
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("zbarimg not installed (apt-get install zbar-tools)")
	}
	m := NewMachine(48)
	m.Write(h(t, `1b 40 1b 61 01 "Scan me" 0a 1d 48 02 1d 68 50 1d 77 02
		1d 6b 49 16 7b 42 "CPN-MFRGGZDFMZTWQ2LK" 0a
		1d 6b 43 0c "400638133393" 0a
		1d 6b 44 07 "9638507" 0a 1d 56 00`))
	r := only(t, m)
	dir := t.TempDir()
	var found []string
	for i, it := range r.Items {
		if it.Kind != ItemBarcode {
			continue
		}
		one := &Receipt{Items: []Item{it}, End: EndFullCut}
		path := filepath.Join(dir, "b.png")
		var buf bytes.Buffer
		if err := one.WritePNG(&buf, 48); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(zbar, "-q", path).Output()
		if err != nil {
			t.Errorf("item %d (%s): zbarimg: %v", i, it.Barcode.Data, err)
			continue
		}
		found = append(found, strings.TrimSpace(string(out)))
	}
	want := []string{"CODE-128:CPN-MFRGGZDFMZTWQ2LK", "EAN-13:4006381333931", "EAN-8:96385074"}
	if strings.Join(found, "|") != strings.Join(want, "|") {
		t.Errorf("zbarimg read %q, want %q", found, want)
	}
}

func TestPNGRendering(t *testing.T) {
	m := NewMachine(48)
	m.Write(h(t, `1b 40 1b 61 01 1d 21 11 1b 45 01 "Endcap" 0a 1d 21 00 1b 45 00 1d 42 01 " rev " 1d 42 00 1b 2d 01 "ul" 1b 2d 00 0a
		1b 74 10 "Caf" e9 " " 80 "5" 0a 1d 28 6b 0b 00 31 50 30 "ABCDEFGH" 1d 28 6b 03 00 31 51 30
		1d 76 30 00 01 00 02 00 ff 81 1d 56 00`))
	var buf bytes.Buffer
	if err := only(t, m).WritePNG(&buf, 48); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 48*12+2*pngMargin || b.Dy() < 100 {
		t.Errorf("bounds %v", b)
	}
	// Some ink, not all ink.
	dark := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
				dark++
			}
		}
	}
	if total := b.Dx() * b.Dy(); dark == 0 || dark > total/2 {
		t.Errorf("%d dark pixels of %d", dark, total)
	}
}
