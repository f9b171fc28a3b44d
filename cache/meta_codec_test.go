package cache

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gotthard-proxy/gotthard/message"
)

var (
	_ encoding.BinaryMarshaler   = (*Meta)(nil)
	_ encoding.BinaryUnmarshaler = (*Meta)(nil)
	_ encoding.BinaryAppender    = (*Meta)(nil)
)

func sampleMeta() *Meta {
	m := &Meta{
		RequestTime:  time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC),
		ResponseTime: time.Date(2026, 3, 1, 12, 0, 1, 5, time.FixedZone("X", 3600)),
		Size:         1234,
	}
	m.Response.Status = 200
	m.Response.Reason = "OK"
	m.Response.Version = message.HTTP11
	m.Response.Header.Add("Content-Type", "text/html; charset=utf-8")
	m.Response.Header.Add("cache-control", "max-age=60")
	m.Response.Header.Add("Set-Cookie", "a=1")
	m.Response.Header.Add("Set-Cookie", "b=2")
	m.Response.Header.Add("X-Empty", "")
	return m
}

func equalMeta(t *testing.T, got, want *Meta) {
	t.Helper()
	if got.Response.Status != want.Response.Status || got.Response.Reason != want.Response.Reason ||
		got.Response.Version != want.Response.Version {
		t.Errorf("status line = %d %q %v, want %d %q %v", got.Response.Status, got.Response.Reason,
			got.Response.Version, want.Response.Status, want.Response.Reason, want.Response.Version)
	}
	if g, w := got.Response.Header.String(), want.Response.Header.String(); g != w {
		t.Errorf("header = %q, want %q", g, w)
	}
	if !got.RequestTime.Equal(want.RequestTime) || !got.ResponseTime.Equal(want.ResponseTime) {
		t.Errorf("times = %v %v, want %v %v", got.RequestTime, got.ResponseTime, want.RequestTime, want.ResponseTime)
	}
	if got.Size != want.Size {
		t.Errorf("size = %d, want %d", got.Size, want.Size)
	}
}

func TestMetaRoundTrip(t *testing.T) {
	long := sampleMeta()
	long.Response.Header.Add("X-Long", strings.Repeat("v", 70000))
	long.Response.Status = 999
	before := &Meta{
		RequestTime:  time.Date(1900, 1, 1, 0, 0, 0, 999999999, time.UTC),
		ResponseTime: time.Unix(-1, 1),
		Size:         -1,
	}
	before.Response.Status = 304
	tests := []struct {
		name string
		m    *Meta
	}{
		{"zero", &Meta{}},
		{"writing", &Meta{Size: -1}},
		{"typical", sampleMeta()},
		{"long value", long},
		{"before 1970", before},
		{"monotonic", &Meta{RequestTime: time.Now(), ResponseTime: time.Now(), Size: 1 << 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			var got Meta
			got.Response.Header.Add("Stale", "must go")
			got.Response.Reason = "stale"
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatal(err)
			}
			equalMeta(t, &got, tt.m)
			if tt.m.RequestTime.IsZero() != got.RequestTime.IsZero() {
				t.Errorf("RequestTime.IsZero = %v, want %v", got.RequestTime.IsZero(), tt.m.RequestTime.IsZero())
			}
			again, err := got.AppendBinary([]byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again[len("prefix"):], b) {
				t.Error("re-encoding the decoded Meta differs from the first encoding")
			}
		})
	}
}

func TestMetaMarshalRejects(t *testing.T) {
	tests := []struct {
		name   string
		status int
		size   int64
	}{
		{"negative status", -1, 0},
		{"status over 999", 1000, 0},
		{"size below -1", 200, -2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &Meta{Size: tt.size}
			m.Response.Status = tt.status
			if _, err := m.MarshalBinary(); err == nil {
				t.Fatal("MarshalBinary succeeded")
			}
		})
	}
}

func TestMetaUnmarshalRejects(t *testing.T) {
	good, err := sampleMeta().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// head builds the encoding's fixed part up to the field count from parts.
	head := func(parts ...[]byte) []byte {
		b := []byte{'G', 'T', 'M', 1}
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	sv := func(v int64) []byte { return binary.AppendVarint(nil, v) }
	okTimes := append(append(sv(0), uv(0)...), append(sv(0), uv(0)...)...)
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"magic only", []byte("GTM")},
		{"bad magic", append([]byte("XTM"), good[3:]...)},
		{"unknown version", append([]byte("GTM\x02"), good[4:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"status over 999", head(uv(1000), uv(0), []byte{11}, okTimes, sv(0), uv(0))},
		{"reason runs past the end", head(uv(200), uv(50), []byte("OK"))},
		{"huge reason length", head(uv(200), uv(1<<62))},
		{"varint overflow", head([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02})},
		{"unterminated varint", head([]byte{0x80, 0x80})},
		{"nanoseconds out of range", head(uv(200), uv(0), []byte{11}, sv(0), uv(1e9), sv(0), uv(0), sv(0), uv(0))},
		{"size below -1", head(uv(200), uv(0), []byte{11}, okTimes, sv(-2), uv(0))},
		{"huge field count", head(uv(200), uv(0), []byte{11}, okTimes, sv(0), uv(1<<40))},
		{"field count past the end", head(uv(200), uv(0), []byte{11}, okTimes, sv(0), uv(3), uv(0), uv(0))},
		{"missing version byte", head(uv(200), uv(0))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m Meta
			err := m.UnmarshalBinary(tt.in)
			if !errors.Is(err, ErrMetaEncoding) {
				t.Fatalf("UnmarshalBinary = %v, want ErrMetaEncoding", err)
			}
		})
	}
}

func TestMetaUnmarshalDoesNotAliasInput(t *testing.T) {
	b, err := sampleMeta().MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var m Meta
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	clear(b)
	equalMeta(t, &m, sampleMeta())
}

func TestMetaUnmarshalAllocationsBounded(t *testing.T) {
	// A hostile count or length must not make the decoder allocate for it.
	uv := func(v uint64) []byte { return binary.AppendUvarint(nil, v) }
	in := []byte{'G', 'T', 'M', 1}
	in = append(in, uv(200)...)
	in = append(in, 0, 11, 0, 0, 0, 0, 0)
	in = append(in, uv(1<<20)...) // a million fields announced, none present
	var m Meta
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 100
	for range runs {
		if err := m.UnmarshalBinary(in); err == nil {
			t.Fatal("UnmarshalBinary succeeded")
		}
	}
	runtime.ReadMemStats(&after)
	// A million fields would take 32 MB; the error message takes a few hundred bytes.
	if perRun := (after.TotalAlloc - before.TotalAlloc) / runs; perRun > 4096 {
		t.Errorf("UnmarshalBinary of a hostile count allocated %d bytes", perRun)
	}
}

func FuzzMetaUnmarshal(f *testing.F) {
	for _, m := range []*Meta{{}, {Size: -1}, sampleMeta()} {
		b, err := m.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("GTM\x01"))
	f.Add([]byte("GTM\x01\xc8\x01\x00\x0b\x00\x00\x00\x00\x00\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var m Meta
		if err := m.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrMetaEncoding) {
				t.Fatalf("error %v does not wrap ErrMetaEncoding", err)
			}
			return
		}
		// What decodes re-encodes to the same bytes: the encoding is canonical except
		// for non-minimal varints, which the decoder accepts.
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a decoded Meta: %v", err)
		}
		var again Meta
		if err := again.UnmarshalBinary(b); err != nil {
			t.Fatalf("decoding a re-encoding: %v", err)
		}
		equalMeta(t, &again, &m)
		if len(b) > len(data)+4*binary.MaxVarintLen64 {
			t.Fatalf("re-encoding is %d bytes from %d", len(b), len(data))
		}
	})
}
