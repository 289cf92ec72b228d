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
	return appendJSONArray(dst, cs, appendChangeJSON)
}

func appendChangeJSON(dst []byte, c RowChange) (_ []byte, err error) {
	dst = append(dst, `{"t":`...)
	if dst, err = AppendJSONString(dst, c.Table); err != nil {
		return nil, err
	}
	dst = append(dst, `,"op":`...)
	if dst, err = AppendJSONString(dst, string(c.Op)); err != nil {
		return nil, err
	}
	dst = append(dst, `,"c":`...)
	if dst, err = appendJSONArray(dst, c.Cols, AppendJSONString); err != nil {
		return nil, err
	}
	dst = append(dst, `,"v":`...)
	if dst, err = appendJSONArray(dst, c.Vals, appendJSONValue); err != nil {
		return nil, err
	}
	return append(dst, '}'), nil
}

// appendJSONArray appends xs as a JSON array (null when nil, as
// json.Marshal writes a nil slice), each element by elem.
func appendJSONArray[T any](dst []byte, xs []T, elem func([]byte, T) ([]byte, error)) (_ []byte, err error) {
	if xs == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '[')
	for i, x := range xs {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = elem(dst, x); err != nil {
			return nil, err
		}
	}
	return append(dst, ']'), nil
}

// appendJSONValue appends one column value.
func appendJSONValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case string:
		return AppendJSONString(dst, x)
	}
	b, err := json.Marshal(v)
	return append(dst, b...), err
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
