package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Frame limits. A frame is a 4-byte big-endian length followed by that many
// bytes of CBOR holding one Msg.
const (
	DefaultMaxFrame = 64 << 20 // bytes in one frame
	MaxNesting      = 16       // CBOR nesting in one frame: messages nest 6 deep at most; a value travels as bytes and has its own cap
	frameHeader     = 4
)

// ErrFrameTooLarge is returned for a frame whose length exceeds the cap.
var ErrFrameTooLarge = errors.New("frame too large")

var (
	encMode cbor.UserBufferEncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.EncOptions{}.UserBufferEncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		MaxNestedLevels:  MaxNesting,
		MaxArrayElements: 1 << 26,
		MaxMapPairs:      1 << 26,
		IndefLength:      cbor.IndefLengthForbidden,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		UTF8:             cbor.UTF8DecodeInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// AppendFrame appends m as one frame (length prefix and CBOR body) to buf.
func AppendFrame(buf []byte, m *Msg) ([]byte, error) {
	start := len(buf)
	// Encoded straight after the length prefix: a big value is copied
	// into the frame once, not into a body first.
	b := bytes.NewBuffer(append(buf, 0, 0, 0, 0))
	if err := encMode.MarshalToBuffer(m, b); err != nil {
		return buf[:start], fmt.Errorf("encode %s frame: %w", m.T, err)
	}
	buf = b.Bytes()
	binary.BigEndian.PutUint32(buf[start:], uint32(len(buf)-start-frameHeader))
	return buf, nil
}

// WriteMsg writes m as one frame in a single Write call, so that the frame
// reaches the socket (and TLS) as one unit.
func WriteMsg(w io.Writer, m *Msg, maxFrame int) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf, err := AppendFrame((*bp)[:0], m)
	if err != nil {
		return err
	}
	*bp = buf
	if maxFrame > 0 && len(buf)-frameHeader > maxFrame {
		return fmt.Errorf("%w: %s frame is %d bytes, over the %d-byte cap", ErrFrameTooLarge, m.T, len(buf)-frameHeader, maxFrame)
	}
	_, err = w.Write(buf)
	return err
}

// ReadMsg reads one frame and decodes it. A frame longer than maxFrame is
// refused before its body is read. io.EOF is returned only when the stream
// ended cleanly between frames.
func ReadMsg(r io.Reader, maxFrame int) (*Msg, error) {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(maxFrame) {
		return nil, fmt.Errorf("%w: %d bytes, over the %d-byte cap", ErrFrameTooLarge, n, maxFrame)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return DecodeMsg(body)
}

// ErrMalformed wraps every frame decoding error.
var ErrMalformed = errors.New("malformed frame")

// DecodeMsg decodes one frame body.
func DecodeMsg(body []byte) (*Msg, error) {
	m := new(Msg)
	if err := decMode.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if m.T == "" {
		return nil, fmt.Errorf("%w: no message type", ErrMalformed)
	}
	return m, nil
}
