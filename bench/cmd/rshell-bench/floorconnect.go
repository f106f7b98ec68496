//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/rshell/rshell/transport"
)

// The connect floor: what a connect costs below rshell's protocol, in the
// same run as connect_first_eval. Each sample is rshell's own TCP dial and
// TLS 1.3 handshake (transport.DialTLS: the key exchanges, resumption and
// corking Dial uses), a stream of rshell's multiplexer and one 16-byte
// round trip on it, against the floor server's TLS echo (no gate, no
// hello, no session, no evaluation), pinned as the rshell server. Its
// ratio is its median ÷ RPyC's connect without TLS: the least
// connect_first_eval's ratio could be for a client that speaks TLS 1.3 as
// rshell does, fresh or resumed.

// runFloorConnect times n connects of each kind (interleavedConnects) to
// the TLS echo at addr and prints them as a clientResult.
func runFloorConnect(addr string, n int) error {
	opts := transport.Options{Trust: transport.TrustOptions{TrustNewHost: true}}
	one := func(cache tls.ClientSessionCache, resume bool) (int64, error) {
		o := opts
		o.Trust.SessionCache = cache
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		t0 := time.Now()
		c, err := transport.DialTLS(ctx, addr, o)
		if err != nil {
			return 0, err
		}
		s := transport.ClientMux(c, transport.MuxOptions{})
		defer s.Close()
		st, err := s.Open()
		if err != nil {
			return 0, err
		}
		if err := floorRoundTrip(st)(); err != nil {
			return 0, err
		}
		d := time.Since(t0)
		if tc, ok := c.(*tls.Conn); !ok || tc.ConnectionState().DidResume != resume {
			return 0, fmt.Errorf("a floor connect meant to be resumed %v was not (%T)", resume, c)
		}
		return int64(d), nil
	}
	r, err := interleavedConnects(n, one)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// floorConnect measures the connect floor from one client process on CPU
// cc against a floor server on CPU sc, and adds its two rows.
func (h *harness) floorConnect(ctx context.Context, res *run, n int, sc, cc string) error {
	fs, addrs, err := h.startFloorServer(ctx, sc)
	if err != nil {
		return err
	}
	defer fs.stop()
	t0 := time.Now()
	r, err := runOne(ctx, func(ctx context.Context) (*proc, error) {
		return start(ctx, cc, h.self, "-role", "floor-client", "-w", "connect", "-addr", addrs[2], "-n", fmt.Sprint(n))
	})
	if err != nil {
		return err
	}
	full, resumed := res.add("floor_tls_connect", "time"), res.add("floor_tls_connect_resumed", "time")
	full.rs, resumed.rs = statOf(r.Samples), statOf(r.Resumed)
	full.rp.note, resumed.rp.note = "—", "—"
	progress("floor_tls_connect: %s (resumed %s) [%s]", fmtTime(full.rs.median), fmtTime(resumed.rs.median), since(t0))
	return nil
}
