package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"unicode/utf8"
)

// CBOR tags used by the value encoding (see PROTOCOL.md, "Values").
const (
	tagPosBignum  = 2
	tagNegBignum  = 3
	tagSet        = 258   // registered CBOR tag for a set
	tagTuple      = 40001 // array → tuple
	tagStruct     = 40002 // [constructor, {field: value}]
	tagRef        = 40003 // [type name, repr]
	tagRawString  = 40004 // byte string → Starlark string that is not valid UTF-8
	maxValueDepth = 1000  // hard ceiling the decoder enforces whatever the limits say
)

func floatBits(f float64) uint64 { return math.Float64bits(f) }

// Encoder appends the CBOR encoding of a replicated value to a buffer. It is
// driven node by node, so a producer (the session's Starlark walker, or
// EncodeValue for a Value tree) never builds an intermediate tree.
type Encoder struct {
	buf []byte
}

// NewEncoder returns an encoder that appends to buf.
func NewEncoder(buf []byte) *Encoder { return &Encoder{buf: buf} }

// Bytes returns the encoding so far.
func (e *Encoder) Bytes() []byte { return e.buf }

// Len returns the number of bytes encoded so far.
func (e *Encoder) Len() int { return len(e.buf) }

// Reset empties the encoder, keeping its buffer.
func (e *Encoder) Reset() { e.buf = e.buf[:0] }

// reserve makes room for n more bytes, doubling the buffer: append alone
// grows a big buffer by a quarter at a time, copying a 2 MB encoding some
// ten times over.
func (e *Encoder) reserve(n int) {
	if cap(e.buf)-len(e.buf) >= n {
		return
	}
	nb := make([]byte, len(e.buf), max(2*cap(e.buf), len(e.buf)+n, 512))
	copy(nb, e.buf)
	e.buf = nb
}

func (e *Encoder) head(major byte, n uint64) {
	e.reserve(9)
	m := major << 5
	switch {
	case n < 24:
		e.buf = append(e.buf, m|byte(n))
	case n <= math.MaxUint8:
		e.buf = append(e.buf, m|24, byte(n))
	case n <= math.MaxUint16:
		e.buf = append(e.buf, m|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		e.buf = append(e.buf, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	default:
		e.buf = append(e.buf, m|27)
		e.buf = binary.BigEndian.AppendUint64(e.buf, n)
	}
}

// None appends None.
func (e *Encoder) None() { e.buf = append(e.buf, 0xf6) }

// Bool appends a bool.
func (e *Encoder) Bool(b bool) {
	if b {
		e.buf = append(e.buf, 0xf5)
	} else {
		e.buf = append(e.buf, 0xf4)
	}
}

// Int appends an int that fits in int64.
func (e *Encoder) Int(i int64) {
	if i >= 0 {
		e.head(0, uint64(i))
	} else {
		e.head(1, uint64(-1-i))
	}
}

// BigInt appends an int of any size.
func (e *Encoder) BigInt(b *big.Int) {
	if b.IsInt64() {
		e.Int(b.Int64())
		return
	}
	if b.Sign() >= 0 {
		e.head(6, tagPosBignum)
		e.byteString(b.Bytes())
		return
	}
	// -1 - n
	n := new(big.Int).Neg(b)
	n.Sub(n, big.NewInt(1))
	e.head(6, tagNegBignum)
	e.byteString(n.Bytes())
}

func (e *Encoder) byteString(b []byte) {
	e.head(2, uint64(len(b)))
	e.reserve(len(b))
	e.buf = append(e.buf, b...)
}

// Float appends a float, always as 64 bits so that NaN payloads and -0.0 survive.
func (e *Encoder) Float(f float64) {
	e.reserve(9)
	e.buf = append(e.buf, 0xfb)
	e.buf = binary.BigEndian.AppendUint64(e.buf, math.Float64bits(f))
}

// String appends a Starlark string. Invalid UTF-8 travels as a tagged byte string.
func (e *Encoder) String(s string) {
	if !utf8.ValidString(s) {
		e.head(6, tagRawString)
		e.head(2, uint64(len(s)))
		e.reserve(len(s))
		e.buf = append(e.buf, s...)
		return
	}
	e.head(3, uint64(len(s)))
	e.reserve(len(s))
	e.buf = append(e.buf, s...)
}

// BytesValue appends a Starlark bytes value.
func (e *Encoder) BytesValue(s string) {
	e.head(2, uint64(len(s)))
	e.reserve(len(s))
	e.buf = append(e.buf, s...)
}

// List starts a list of n elements; append the n elements next.
func (e *Encoder) List(n int) { e.head(4, uint64(n)) }

// Tuple starts a tuple of n elements.
func (e *Encoder) Tuple(n int) { e.head(6, tagTuple); e.head(4, uint64(n)) }

// Set starts a set of n elements.
func (e *Encoder) Set(n int) { e.head(6, tagSet); e.head(4, uint64(n)) }

// Dict starts a dict of n pairs; append key, value, key, value... next.
func (e *Encoder) Dict(n int) { e.head(5, uint64(n)) }

// Struct starts a struct with n fields; append n (String name, value) pairs next.
func (e *Encoder) Struct(ctor string, n int) {
	e.head(6, tagStruct)
	e.head(4, 2)
	e.String(ctor)
	e.head(5, uint64(n))
}

// Ref appends a ref leaf.
func (e *Encoder) Ref(typ, repr string) {
	e.head(6, tagRef)
	e.head(4, 2)
	e.String(typ)
	e.String(repr)
}

// Value appends a whole Value tree.
func (e *Encoder) Value(v Value) {
	switch v.Kind {
	case KindNone:
		e.None()
	case KindBool:
		e.Bool(v.Bool)
	case KindInt:
		if v.Big != nil {
			e.BigInt(v.Big)
		} else {
			e.Int(v.Int)
		}
	case KindFloat:
		e.Float(v.Float())
	case KindString:
		e.String(v.Str)
	case KindBytes:
		e.BytesValue(v.Str)
	case KindList, KindTuple, KindSet:
		switch v.Kind {
		case KindList:
			e.List(len(v.Items))
		case KindTuple:
			e.Tuple(len(v.Items))
		default:
			e.Set(len(v.Items))
		}
		for i := range v.Items {
			e.Value(v.Items[i])
		}
	case KindDict:
		e.Dict(len(v.Items) / 2)
		for i := range v.Items {
			e.Value(v.Items[i])
		}
	case KindStruct:
		e.Struct(v.Str, len(v.Items)/2)
		for i := range v.Items {
			e.Value(v.Items[i])
		}
	case KindRef:
		e.Ref(v.Str, v.Repr())
	default:
		e.Ref("invalid", fmt.Sprintf("<invalid kind %d>", v.Kind))
	}
}

// EncodeValue returns the CBOR encoding of v.
func EncodeValue(v Value) []byte {
	e := Encoder{}
	e.Value(v)
	return e.buf
}

// ErrBadValue is wrapped by every value decoding error.
var ErrBadValue = errors.New("malformed value")

// DecodeValue decodes the CBOR encoding of a replicated value. Nesting is
// capped at maxDepth (and never beyond 1000); lengths are checked against
// the bytes actually present before anything is allocated, so a hostile
// length costs nothing.
func DecodeValue(b []byte, maxDepth int) (Value, error) {
	if maxDepth <= 0 || maxDepth > maxValueDepth {
		maxDepth = maxValueDepth
	}
	// One copy of the input as a string: every decoded string is a slice
	// of it, not an allocation of its own.
	d := decoder{b: b, s: string(b), maxDepth: maxDepth}
	v, err := d.value(0)
	if err != nil {
		return Value{}, err
	}
	if d.off != len(d.b) {
		return Value{}, fmt.Errorf("%w: %d trailing bytes", ErrBadValue, len(d.b)-d.off)
	}
	return v, nil
}

type decoder struct {
	b        []byte
	s        string // b as a string
	off      int
	maxDepth int
	slab     []Value // children are carved from here: one allocation for many containers
}

func (d *decoder) errf(format string, args ...any) error {
	return fmt.Errorf("%w at byte %d: %s", ErrBadValue, d.off, fmt.Sprintf(format, args...))
}

// head reads an item head: major type and argument (or the simple value / float bits).
func (d *decoder) head() (major byte, arg uint64, err error) {
	if d.off >= len(d.b) {
		return 0, 0, d.errf("unexpected end")
	}
	ib := d.b[d.off]
	d.off++
	major = ib >> 5
	ai := ib & 31
	switch {
	case ai < 24:
		return major, uint64(ai), nil
	case ai <= 27:
		n := 1 << (ai - 24)
		if len(d.b)-d.off < n {
			return 0, 0, d.errf("unexpected end")
		}
		for i := 0; i < n; i++ {
			arg = arg<<8 | uint64(d.b[d.off+i])
		}
		d.off += n
		return major, arg, nil
	}
	return 0, 0, d.errf("indefinite or reserved length (0x%02x) is not used", ib)
}

func (d *decoder) rawBytes(n uint64) ([]byte, error) {
	if n > uint64(len(d.b)-d.off) {
		return nil, d.errf("length %d exceeds the %d bytes left", n, len(d.b)-d.off)
	}
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return s, nil
}

// rawString is rawBytes as a slice of d.s.
func (d *decoder) rawString(n uint64) (string, error) {
	if n > uint64(len(d.b)-d.off) {
		return "", d.errf("length %d exceeds the %d bytes left", n, len(d.b)-d.off)
	}
	s := d.s[d.off : d.off+int(n)]
	d.off += int(n)
	return s, nil
}

// count checks that n elements (each at least one byte, times per) can still be present.
func (d *decoder) count(n uint64, per uint64) (int, error) {
	if n > uint64(len(d.b)-d.off)/per {
		return 0, d.errf("count %d exceeds the bytes left", n)
	}
	return int(n), nil
}

func (d *decoder) items(n int, depth int) ([]Value, error) {
	if n == 0 {
		return nil, nil
	}
	if n > len(d.slab) {
		// Size the next slab by what the rest of the input could hold.
		d.slab = make([]Value, max(n, min(len(d.b)-d.off, 4096)))
	}
	items := d.slab[:n:n]
	d.slab = d.slab[n:]
	for i := range items {
		if err := d.valueInto(&items[i], depth+1); err != nil {
			return nil, err
		}
	}
	return items, nil
}

func (d *decoder) stringItem() (string, error) {
	major, n, err := d.head()
	if err != nil {
		return "", err
	}
	if major == 6 && n == tagRawString {
		major, n, err = d.head()
		if err != nil {
			return "", err
		}
		if major != 2 {
			return "", d.errf("tag %d must wrap a byte string", tagRawString)
		}
	} else if major != 3 {
		return "", d.errf("expected a string")
	}
	return d.rawString(n)
}

func (d *decoder) value(depth int) (Value, error) {
	var v Value
	err := d.valueInto(&v, depth)
	return v, err
}

// valueInto decodes one value into *dst, which must be zero. Writing the
// common kinds field by field into a slab slot, instead of copying a whole
// Value into it, halves the cost of decoding a big container.
func (d *decoder) valueInto(dst *Value, depth int) error {
	if depth > d.maxDepth {
		return d.errf("nested deeper than %d", d.maxDepth)
	}
	start := d.off
	major, arg, err := d.head()
	if err != nil {
		return err
	}
	switch major {
	case 0:
		if arg > math.MaxInt64 {
			*dst = BigInt(new(big.Int).SetUint64(arg))
			return nil
		}
		dst.Kind, dst.Int = KindInt, int64(arg)
		return nil
	case 1:
		if arg > math.MaxInt64 {
			b := new(big.Int).SetUint64(arg)
			b.Neg(b).Sub(b, big.NewInt(1))
			*dst = BigInt(b)
			return nil
		}
		dst.Kind, dst.Int = KindInt, -1-int64(arg)
		return nil
	case 2, 3:
		dst.Kind = KindString
		if major == 2 {
			dst.Kind = KindBytes
		}
		dst.Str, err = d.rawString(arg)
		return err
	case 4:
		n, err := d.count(arg, 1)
		if err != nil {
			return err
		}
		dst.Kind = KindList
		dst.Items, err = d.items(n, depth)
		return err
	case 5:
		n, err := d.count(arg, 2)
		if err != nil {
			return err
		}
		dst.Kind = KindDict
		dst.Items, err = d.items(2*n, depth)
		return err
	case 6:
		*dst, err = d.tagged(arg, depth)
		return err
	case 7:
		switch d.b[start] & 31 {
		case 20:
			*dst = Bool(false)
			return nil
		case 21:
			*dst = Bool(true)
			return nil
		case 22:
			*dst = None()
			return nil
		case 25, 26, 27:
			*dst = Float(decodeFloat(d.b[start]&31, arg))
			return nil
		}
		return d.errf("unsupported simple value 0x%02x", d.b[start])
	}
	return d.errf("unknown major type %d", major)
}

func decodeFloat(ai byte, bits uint64) float64 {
	switch ai {
	case 25:
		return float64(halfToFloat32(uint16(bits)))
	case 26:
		return float64(math.Float32frombits(uint32(bits)))
	}
	return math.Float64frombits(bits)
}

func halfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch exp {
	case 0:
		f := float32(frac) / (1 << 24)
		if sign != 0 {
			return -f
		}
		return f
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | frac<<13)
}

func (d *decoder) tagged(tag uint64, depth int) (Value, error) {
	switch tag {
	case tagPosBignum, tagNegBignum:
		major, n, err := d.head()
		if err != nil {
			return Value{}, err
		}
		if major != 2 {
			return Value{}, d.errf("bignum tag must wrap a byte string")
		}
		if n > 1<<16 {
			return Value{}, d.errf("bignum of %d bytes is too large", n)
		}
		b, err := d.rawBytes(n)
		if err != nil {
			return Value{}, err
		}
		x := new(big.Int).SetBytes(b)
		if tag == tagNegBignum {
			x.Neg(x).Sub(x, big.NewInt(1))
		}
		return BigInt(x), nil
	case tagRawString:
		major, n, err := d.head()
		if err != nil {
			return Value{}, err
		}
		if major != 2 {
			return Value{}, d.errf("tag %d must wrap a byte string", tagRawString)
		}
		b, err := d.rawString(n)
		return String(b), err
	case tagTuple, tagSet:
		major, n, err := d.head()
		if err != nil {
			return Value{}, err
		}
		if major != 4 {
			return Value{}, d.errf("tag %d must wrap an array", tag)
		}
		cnt, err := d.count(n, 1)
		if err != nil {
			return Value{}, err
		}
		items, err := d.items(cnt, depth)
		k := KindTuple
		if tag == tagSet {
			k = KindSet
		}
		return Value{Kind: k, Items: items}, err
	case tagStruct:
		if major, n, err := d.head(); err != nil || major != 4 || n != 2 {
			return Value{}, orErr(err, d.errf("struct must be [constructor, fields]"))
		}
		ctor, err := d.stringItem()
		if err != nil {
			return Value{}, err
		}
		major, n, err := d.head()
		if err != nil {
			return Value{}, err
		}
		if major != 5 {
			return Value{}, d.errf("struct fields must be a map")
		}
		cnt, err := d.count(n, 2)
		if err != nil {
			return Value{}, err
		}
		items := make([]Value, 0, 2*cnt)
		for i := 0; i < cnt; i++ {
			name, err := d.stringItem()
			if err != nil {
				return Value{}, err
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return Value{}, err
			}
			items = append(items, String(name), v)
		}
		return Value{Kind: KindStruct, Str: ctor, Items: items}, nil
	case tagRef:
		if major, n, err := d.head(); err != nil || major != 4 || n != 2 {
			return Value{}, orErr(err, d.errf("ref must be [type, repr]"))
		}
		typ, err := d.stringItem()
		if err != nil {
			return Value{}, err
		}
		repr, err := d.stringItem()
		if err != nil {
			return Value{}, err
		}
		return Ref(typ, repr), nil
	}
	return Value{}, d.errf("unknown tag %d", tag)
}

func orErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
