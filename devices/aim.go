package devices

// Symbology is the barcode symbology a scanner reports through an AIM
// symbology identifier (ISO/IEC 15424): "]" + a code character + a
// modifier digit in front of the data, e.g. "]E0" for EAN-13. Scanners
// send it only when configured to; without it the symbology is
// SymUnknown and Classify judges by the data alone.
type Symbology string

// Symbologies Endcap names. Any other AIM identifier is reported as
// SymOther with the identifier kept in Event.AIM.
const (
	SymUnknown    Symbology = ""
	SymEAN13      Symbology = "EAN-13"      // ]E0 with 13 digits (UPC-A is sent as an EAN-13 with a leading 0)
	SymUPCA       Symbology = "UPC-A"       // ]E0 with 12 digits (scanners set to send UPC-A without the leading 0)
	SymEAN8       Symbology = "EAN-8"       // ]E4
	SymEANAddOn   Symbology = "EAN+add-on"  // ]E1, ]E2, ]E3: with a 2- or 5-digit supplement
	SymCode128    Symbology = "Code128"     // ]C0
	SymGS1_128    Symbology = "GS1-128"     // ]C1
	SymCode39     Symbology = "Code39"      // ]A
	SymITF        Symbology = "ITF"         // ]I
	SymCodabar    Symbology = "Codabar"     // ]F
	SymQR         Symbology = "QR"          // ]Q
	SymDataMatrix Symbology = "DataMatrix"  // ]d
	SymPDF417     Symbology = "PDF417"      // ]L
	SymGS1DataBar Symbology = "GS1 DataBar" // ]e
	SymOther      Symbology = "other"
)

// IsEANUPC reports whether s is one of the EAN/UPC symbologies, whose data
// must be digits with a valid check digit.
func (s Symbology) IsEANUPC() bool {
	return s == SymEAN13 || s == SymUPCA || s == SymEAN8
}

// ParseAIM splits an AIM symbology identifier off the front of data. It
// returns the identifier ("]E0"), the symbology and the rest. ok is false
// when data does not start with an identifier; then rest is data.
func ParseAIM(data []byte) (id string, sym Symbology, rest []byte, ok bool) {
	if len(data) < 3 || data[0] != ']' || !printable(data[1]) || !printable(data[2]) {
		return "", SymUnknown, data, false
	}
	id, rest = string(data[:3]), data[3:]
	code, mod := data[1], data[2]
	switch code {
	case 'E':
		switch mod {
		case '0':
			sym = SymEAN13
			if len(rest) == 12 {
				sym = SymUPCA
			}
		case '4':
			sym = SymEAN8
		case '1', '2', '3':
			sym = SymEANAddOn
		default:
			sym = SymOther
		}
	case 'C':
		sym = SymCode128
		if mod == '1' {
			sym = SymGS1_128
		}
	case 'A':
		sym = SymCode39
	case 'I':
		sym = SymITF
	case 'F':
		sym = SymCodabar
	case 'Q':
		sym = SymQR
	case 'd':
		sym = SymDataMatrix
	case 'L':
		sym = SymPDF417
	case 'e':
		sym = SymGS1DataBar
	default:
		sym = SymOther
	}
	return id, sym, rest, true
}
