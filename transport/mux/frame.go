package mux

import (
	"encoding/binary"
	"fmt"
)

// The frame header, as in yamux's spec: version, type, flags, stream ID
// and length, big-endian, 12 bytes.
const headerSize = 12

const protoVersion = 0

// Frame types.
const (
	typeData         = 0 // length is the payload's
	typeWindowUpdate = 1 // length is the receive window's growth
	typePing         = 2 // stream 0; length is the ping's opaque ID
	typeGoAway       = 3 // stream 0; length is a reason code
)

// Flags.
const (
	flagSYN = 1 << 0 // opens a stream (data or window update), or asks for a pong
	flagACK = 1 << 1 // accepts a stream, or answers a ping
	flagFIN = 1 << 2 // the sender writes no more on this stream
	flagRST = 1 << 3 // the stream is dead on both sides
)

// initialWindow is what each side may send on a new stream before any
// window update: yamux's 256 KiB.
const initialWindow = 256 << 10

type header [headerSize]byte

func newHeader(typ uint8, flags uint16, id, length uint32) header {
	var h header
	h[0] = protoVersion
	h[1] = typ
	binary.BigEndian.PutUint16(h[2:4], flags)
	binary.BigEndian.PutUint32(h[4:8], id)
	binary.BigEndian.PutUint32(h[8:12], length)
	return h
}

func (h header) version() uint8   { return h[0] }
func (h header) typ() uint8       { return h[1] }
func (h header) flags() uint16    { return binary.BigEndian.Uint16(h[2:4]) }
func (h header) streamID() uint32 { return binary.BigEndian.Uint32(h[4:8]) }
func (h header) length() uint32   { return binary.BigEndian.Uint32(h[8:12]) }

func (h header) String() string {
	return fmt.Sprintf("frame(type %d, flags %#x, stream %d, length %d)", h.typ(), h.flags(), h.streamID(), h.length())
}
