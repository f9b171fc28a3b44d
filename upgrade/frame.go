package upgrade

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// A Listener is one listening socket in a hand-over, with the endpoint it serves.
type Listener struct {
	// Network is "tcp", "tcp4", "tcp6" or "unix".
	Network string
	// Address is the address as the service configured it ("127.0.0.1:6188", ":0",
	// "/run/gw.sock"): the new process matches its own endpoints against it.
	Address string
	// TLS reports whether the service terminates TLS on this endpoint.
	TLS bool
	// File is the socket: the descriptor to send, or the one received. [Send] does not
	// close it.
	File *os.File
}

// String returns "network:address", the form used in logs.
func (l Listener) String() string { return l.Network + ":" + l.Address }

// ioTimeout bounds one frame's transfer once a peer is connected, so a stray client that
// connects and sends nothing cannot hold the socket.
const ioTimeout = 5 * time.Second

// writeFrame writes one frame, with fds as SCM_RIGHTS on its first byte.
func writeFrame(c *net.UnixConn, kind byte, body []byte, fds []int) error {
	b := appendHeader(make([]byte, 0, headerLen+len(body)), kind, os.Getpid(), len(body))
	b = append(b, body...)
	var oob []byte
	if len(fds) > 0 {
		oob = syscall.UnixRights(fds...)
	}
	if err := c.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
		return err
	}
	n, _, err := c.WriteMsgUnix(b, oob, nil)
	if err == nil && n < len(b) {
		// A stream socket may take the frame in parts; the descriptors went with the
		// first one.
		_, err = c.Write(b[n:])
	}
	return err
}

// readFrame reads one frame and the descriptors that came with it, within deadline. On
// error it closes every descriptor received.
func readFrame(c *net.UnixConn, deadline time.Time) (header, []byte, []*os.File, error) {
	var files []*os.File
	fail := func(err error) (header, []byte, []*os.File, error) {
		for _, f := range files {
			f.Close()
		}
		return header{}, nil, nil, err
	}
	if err := c.SetReadDeadline(deadline); err != nil {
		return fail(err)
	}
	oob := make([]byte, syscall.CmsgSpace(4*(MaxListeners+3)))
	read := func(b []byte) error {
		want := len(b)
		for len(b) > 0 {
			n, oobn, flags, _, err := c.ReadMsgUnix(b, oob)
			if oobn > 0 {
				fs, perr := parseRights(oob[:oobn])
				files = append(files, fs...)
				if perr != nil {
					return perr
				}
			}
			if flags&syscall.MSG_CTRUNC != 0 {
				return fmt.Errorf("%w: more descriptors than a hand-over may carry", errProtocol)
			}
			if errors.Is(err, io.EOF) || err == nil && n == 0 {
				return fmt.Errorf("connection closed after %d of %d bytes", want-len(b)+n, want)
			}
			if err != nil {
				return err
			}
			b = b[n:]
		}
		return nil
	}
	hb := make([]byte, headerLen)
	if err := read(hb); err != nil {
		return fail(fmt.Errorf("message cut short: %w", err))
	}
	h, err := parseHeader(hb)
	if err != nil {
		return fail(err)
	}
	body := make([]byte, h.n)
	if err := read(body); err != nil {
		return fail(fmt.Errorf("message cut short: %w", err))
	}
	return h, body, files, nil
}

// parseRights returns the descriptors of the SCM_RIGHTS messages in oob as files.
func parseRights(oob []byte) ([]*os.File, error) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("%w: ancillary data: %w", errProtocol, err)
	}
	var files []*os.File
	var bad error
	for _, m := range msgs {
		if m.Header.Level != syscall.SOL_SOCKET || m.Header.Type != syscall.SCM_RIGHTS {
			bad = fmt.Errorf("%w: ancillary data of level %d type %d", errProtocol, m.Header.Level, m.Header.Type)
			continue
		}
		fds, err := syscall.ParseUnixRights(&m)
		if err != nil {
			bad = fmt.Errorf("%w: ancillary data: %w", errProtocol, err)
			continue
		}
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "inherited socket"))
		}
	}
	return files, bad
}
