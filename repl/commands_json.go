package repl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/rshell/rshell/transport"
)

// toJSON converts a replicated value to indented JSON for :get.
//
// The choices: dicts and structs become objects, with string keys as they
// are and int, float, bool and None keys as their text ("1", "true",
// "null"), as Python's json module does; other keys are an error. Lists,
// tuples and sets become arrays. Ints of any size stay exact JSON numbers.
// Bytes become base64 strings (JSON has no bytes; encoding/json does the
// same). NaN and the infinities have no JSON form and refs (functions,
// modules) cannot leave the host: both are errors that name where in the
// value they are, so nothing is silently changed. Strings that are not
// valid UTF-8 are an error too: JSON would have to alter them.
func toJSON(v transport.Value, name string) ([]byte, error) {
	var b bytes.Buffer
	if err := writeJSON(&b, v, name, ""); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v transport.Value, where, indent string) error {
	inner := indent + "  "
	switch v.Kind {
	case transport.KindNone:
		b.WriteString("null")
	case transport.KindBool:
		b.WriteString(strconv.FormatBool(v.Bool))
	case transport.KindInt:
		if v.Big != nil {
			b.WriteString(v.Big.String())
		} else {
			b.WriteString(strconv.FormatInt(v.Int, 10))
		}
	case transport.KindFloat:
		if math.IsNaN(v.Float()) || math.IsInf(v.Float(), 0) {
			return fmt.Errorf("%s is %v, which JSON cannot represent", where, v.Float())
		}
		f, _ := json.Marshal(v.Float())
		b.Write(f)
	case transport.KindString:
		if !utf8.ValidString(v.Str) {
			return fmt.Errorf("%s is a string that is not valid UTF-8, which JSON cannot keep as it is", where)
		}
		s, _ := json.Marshal(v.Str)
		b.Write(s)
	case transport.KindBytes:
		s, _ := json.Marshal(base64.StdEncoding.EncodeToString([]byte(v.Str)))
		b.Write(s)
	case transport.KindList, transport.KindTuple, transport.KindSet:
		if len(v.Items) == 0 {
			b.WriteString("[]")
			return nil
		}
		b.WriteString("[\n")
		for i, it := range v.Items {
			b.WriteString(inner)
			if err := writeJSON(b, it, fmt.Sprintf("%s[%d]", where, i), inner); err != nil {
				return err
			}
			if i < len(v.Items)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "]")
	case transport.KindDict, transport.KindStruct:
		if len(v.Items) == 0 {
			b.WriteString("{}")
			return nil
		}
		b.WriteString("{\n")
		for i := 0; i+1 < len(v.Items); i += 2 {
			key, err := jsonKey(v.Items[i], where)
			if err != nil {
				return err
			}
			k, _ := json.Marshal(key)
			b.WriteString(inner)
			b.Write(k)
			b.WriteString(": ")
			sub := fmt.Sprintf("%s[%s]", where, k)
			if v.Kind == transport.KindStruct {
				sub = where + "." + key
			}
			if err := writeJSON(b, v.Items[i+1], sub, inner); err != nil {
				return err
			}
			if i+2 < len(v.Items) {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "}")
	case transport.KindRef:
		return fmt.Errorf("%s is a %s, which cannot leave the host (only data can)", where, v.Str)
	default:
		return fmt.Errorf("%s has an unknown kind %v", where, v.Kind)
	}
	return nil
}

func jsonKey(k transport.Value, where string) (string, error) {
	switch k.Kind {
	case transport.KindString:
		if !utf8.ValidString(k.Str) {
			return "", fmt.Errorf("a key of %s is not valid UTF-8", where)
		}
		return k.Str, nil
	case transport.KindInt:
		if k.Big != nil {
			return k.Big.String(), nil
		}
		return strconv.FormatInt(k.Int, 10), nil
	case transport.KindBool:
		return strconv.FormatBool(k.Bool), nil
	case transport.KindNone:
		return "null", nil
	case transport.KindFloat:
		if math.IsNaN(k.Float()) || math.IsInf(k.Float(), 0) {
			return "", fmt.Errorf("a key of %s is %v, which JSON cannot represent", where, k.Float())
		}
		f, _ := json.Marshal(k.Float())
		return string(f), nil
	}
	return "", fmt.Errorf("%s has a %s key; JSON object keys are strings", where, k.Kind)
}
