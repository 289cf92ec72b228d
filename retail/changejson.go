package retail

import (
	"encoding/json"
	"strconv"
)

// AppendChangesJSON appends cs to dst as json.Marshal writes them, byte
// for byte, without reflection: the hub's leader encodes every row it
// writes. Values of the types Apply writes (int64, string, nil) are
// written here; anything else, and strings encoding/json would escape,
// go through json.Marshal.
func AppendChangesJSON(dst []byte, cs []RowChange) ([]byte, error) {
	if cs == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '[')
	for i, c := range cs {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		dst = append(dst, `{"t":`...)
		if dst, err = AppendJSONString(dst, c.Table); err != nil {
			return nil, err
		}
		dst = append(dst, `,"op":`...)
		if dst, err = AppendJSONString(dst, string(c.Op)); err != nil {
			return nil, err
		}
		dst = append(dst, `,"c":`...)
		if c.Cols == nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, '[')
			for j, col := range c.Cols {
				if j > 0 {
					dst = append(dst, ',')
				}
				if dst, err = AppendJSONString(dst, col); err != nil {
					return nil, err
				}
			}
			dst = append(dst, ']')
		}
		dst = append(dst, `,"v":`...)
		if c.Vals == nil {
			dst = append(dst, "null"...)
		} else {
			dst = append(dst, '[')
			for j, v := range c.Vals {
				if j > 0 {
					dst = append(dst, ',')
				}
				switch x := v.(type) {
				case nil:
					dst = append(dst, "null"...)
				case int64:
					dst = strconv.AppendInt(dst, x, 10)
				case string:
					dst, err = AppendJSONString(dst, x)
				default:
					var b []byte
					if b, err = json.Marshal(v); err == nil {
						dst = append(dst, b...)
					}
				}
				if err != nil {
					return nil, err
				}
			}
			dst = append(dst, ']')
		}
		dst = append(dst, '}')
	}
	return append(dst, ']'), nil
}

// AppendJSONString appends s as json.Marshal writes it.
//
// A string of printable ASCII other than the characters encoding/json
// escapes is written as it is; any other goes through json.Marshal.
func AppendJSONString(dst []byte, s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, err := json.Marshal(s)
			return append(dst, b...), err
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), nil
}
