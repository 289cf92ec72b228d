package sim

import "fmt"

// Bar patterns for the PNG rendering of 1D barcodes: true is a dark
// module. Quiet zones are the caller's.

// code128Widths are the bar/space widths of Code128 symbols 0-106 (106
// is the stop pattern, 7 elements).
var code128Widths = [107]string{
	"212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213",
	"221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132",
	"221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211",
	"212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
	"231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331",
	"231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111",
	"314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
	"112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
	"111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
	"214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141",
	"114131", "311141", "411131", "211412", "211214", "211232", "2331112",
}

const code128StartB = 104

// code128Modules encodes printable ASCII in code set B.
func code128Modules(data string) ([]bool, error) {
	symbols := []int{code128StartB}
	sum := code128StartB
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c < 0x20 || c > 0x7e {
			return nil, fmt.Errorf("code128: byte 0x%02x not in code set B", c)
		}
		v := int(c) - 0x20
		symbols = append(symbols, v)
		sum += v * (i + 1)
	}
	symbols = append(symbols, sum%103, 106)
	var mods []bool
	for _, s := range symbols {
		dark := true
		for _, w := range code128Widths[s] {
			for k := 0; k < int(w-'0'); k++ {
				mods = append(mods, dark)
			}
			dark = !dark
		}
	}
	return mods, nil
}

// EAN digit patterns: L (odd parity, left half), G (even parity, left
// half) and R (right half), 7 modules each, '1' dark.
var (
	eanL = [10]string{"0001101", "0011001", "0010011", "0111101", "0100011", "0110001", "0101111", "0111011", "0110111", "0001011"}
	eanG = [10]string{"0100111", "0110011", "0011011", "0100001", "0011101", "0111001", "0000101", "0010001", "0001001", "0010111"}
	eanR = [10]string{"1110010", "1100110", "1101100", "1000010", "1011100", "1001110", "1010000", "1000100", "1001000", "1110100"}
	// eanParity is the L/G choice of the 6 left digits, by the first digit.
	eanParity = [10]string{"LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG", "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL"}
)

// eanModules encodes an EAN-13 (13 digits), UPC-A (12) or EAN-8 (8),
// check digit included.
func eanModules(data string) ([]bool, error) {
	if !isDigits(data) {
		return nil, fmt.Errorf("ean: %q is not digits", data)
	}
	if len(data) == 12 {
		data = "0" + data // UPC-A is an EAN-13 starting with 0
	}
	var s string
	switch len(data) {
	case 13:
		par := eanParity[data[0]-'0']
		s = "101"
		for i := 1; i <= 6; i++ {
			d := data[i] - '0'
			if par[i-1] == 'L' {
				s += eanL[d]
			} else {
				s += eanG[d]
			}
		}
		s += "01010"
		for i := 7; i <= 12; i++ {
			s += eanR[data[i]-'0']
		}
		s += "101"
	case 8:
		s = "101"
		for i := 0; i < 4; i++ {
			s += eanL[data[i]-'0']
		}
		s += "01010"
		for i := 4; i < 8; i++ {
			s += eanR[data[i]-'0']
		}
		s += "101"
	default:
		return nil, fmt.Errorf("ean: %d digits", len(data))
	}
	mods := make([]bool, len(s))
	for i := range s {
		mods[i] = s[i] == '1'
	}
	return mods, nil
}
