package transport

import (
	"math"
	"testing"
	"unsafe"
)

// TestValueSize guards the node size: replicating a 100k-key dict of 3-int
// lists allocates 500,000 Values, so every field added costs megabytes.
func TestValueSize(t *testing.T) {
	if n := unsafe.Sizeof(Value{}); n != 64 {
		t.Errorf("Value is %d bytes, want 64", n)
	}
	f := Float(math.Copysign(0, -1))
	if !math.Signbit(f.Float()) || Int(3).Float() != 0 {
		t.Errorf("float bits: %v", f)
	}
	if r := Ref("module", "<module os>"); r.Repr() != "<module os>" || r.Len() != 0 || String("x").Repr() != "" {
		t.Errorf("ref: %+v", r)
	}
}
