package discovery

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gotthard-proxy/gotthard/lb"
)

// MaxFileSize bounds the backends file that File reads.
const MaxFileSize = 1 << 20

// File reads backends from a text file and reads it again when its modification time
// or size changes (it is polled every Interval). The format is one backend per line:
//
//	# comment
//	10.0.0.1:8080
//	10.0.0.2:8080 weight=3 zone=eu-west-1a
//
// an address, then optional key=value fields: weight sets Backend.Weight, any other
// key goes to Backend.Meta. Blank lines and lines starting with # are ignored. A file
// that cannot be read or parsed is logged and the last good set stays in use; to
// replace the file atomically, write a new one and rename it over the old.
//
// Its fields must not change once Watch runs.
type File struct {
	// Path is the file's path.
	Path string
	// Interval is how often the file's modification time and size are checked. If
	// zero, 5s.
	Interval time.Duration
	// Logger receives errors reading the file. If nil, slog.Default().
	Logger *slog.Logger
}

// Watch reports the file's backends, then again each time the file changes, until ctx
// ends. It returns at once if the first read fails.
func (f *File) Watch(ctx context.Context, update func([]lb.Backend)) error {
	interval := f.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	log := f.Logger
	if log == nil {
		log = slog.Default()
	}
	bs, st, err := f.load()
	if err != nil {
		return err
	}
	update(bs)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		fi, err := os.Stat(f.Path)
		if err != nil {
			log.Warn("discovery: backends file", "path", f.Path, "err", err)
			continue
		}
		if fi.ModTime().Equal(st.ModTime()) && fi.Size() == st.Size() {
			continue
		}
		nbs, nst, err := f.load()
		if err != nil {
			log.Warn("discovery: backends file; keeping the last good set", "path", f.Path, "err", err)
			st = fi // do not retry the same broken version every tick
			continue
		}
		st = nst
		update(nbs)
	}
}

// load reads and parses the file.
func (f *File) load() ([]lb.Backend, os.FileInfo, error) {
	fh, err := os.Open(f.Path)
	if err != nil {
		return nil, nil, fmt.Errorf("discovery: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("discovery: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("discovery: %s: %w", f.Path, err)
	}
	if len(data) > MaxFileSize {
		return nil, nil, fmt.Errorf("discovery: %s: larger than %d bytes", f.Path, MaxFileSize)
	}
	bs, err := ParseBackends(data)
	if err != nil {
		return nil, nil, fmt.Errorf("discovery: %s: %w", f.Path, err)
	}
	return bs, fi, nil
}

// ErrSyntax is wrapped by ParseBackends's errors.
var ErrSyntax = errors.New("syntax error")

// ParseBackends parses the File format.
func ParseBackends(data []byte) ([]lb.Backend, error) {
	var bs []lb.Backend
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		b := lb.Backend{Addr: fields[0]}
		if _, _, err := net.SplitHostPort(b.Addr); err != nil {
			var ae *net.AddrError
			if errors.As(err, &ae) {
				err = errors.New(ae.Err) // its text repeats the address
			}
			return nil, fmt.Errorf("line %d: %w: address %q: %v", n, ErrSyntax, b.Addr, err)
		}
		for _, kv := range fields[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, fmt.Errorf("line %d: %w: %q is not key=value", n, ErrSyntax, kv)
			}
			if k == "weight" {
				w, err := strconv.Atoi(v)
				if err != nil || w < 1 || w > lb.MaxWeight {
					return nil, fmt.Errorf("line %d: %w: weight %q not in 1..%d", n, ErrSyntax, v, lb.MaxWeight)
				}
				b.Weight = w
				continue
			}
			if b.Meta == nil {
				b.Meta = map[string]string{}
			}
			b.Meta[k] = v
		}
		bs = append(bs, b)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	return bs, nil
}
