package syslog

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// FuzzFormat formats records of arbitrary messages, keys, values and group names in
// both formats and checks that the strict parser reads every message back, with the
// message and structured-data values intact (invalid UTF-8 replaced byte by byte).
func FuzzFormat(f *testing.F) {
	f.Add("upstream failed", "peer", "10.0.0.7:8080", "req", false)
	f.Add("", "", "", "", true)
	f.Add("a \"b\" ]", "k=]\" x", `\"]`, "g h", false)
	f.Add("\xff\xfe\uFEFF", "\xc3", "\xe2\x82", "é", true)
	f.Add("\uFEFFbom", strings.Repeat("k", 40), "\n\r\x00", ".", false)
	f.Fuzz(func(t *testing.T, msg, key, value, group string, bom bool) {
		for _, format := range []Format{StructuredData, Text} {
			cfg, err := newConfig(Options{Network: "udp", Addr: "127.0.0.1:514", Hostname: "h", AppName: "a", ProcID: "1", Format: format, BOM: bom})
			if err != nil {
				t.Fatal(err)
			}
			var h slog.Handler = &Handler{cfg: cfg}
			h = h.WithGroup(group)
			r := slog.NewRecord(time.Now(), slog.LevelWarn, msg, 0)
			r.AddAttrs(slog.String(key, value))
			b := h.(*Handler).format(nil, r)
			m, err := parse(b)
			if err != nil {
				t.Fatalf("format %d: %q: %v", format, b, err)
			}
			if m.Pri != 3*8+4 || m.Hostname != "h" || m.AppName != "a" || m.ProcID != "1" {
				t.Errorf("header: %+v", m)
			}
			if format == Text {
				continue
			}
			want := string([]rune(msg))
			if !bom {
				want = strings.TrimPrefix(want, "\uFEFF") // reads as a BOM
			}
			if m.Msg != want {
				t.Errorf("MSG %q, want %q", m.Msg, want)
			}
			if len(m.Params) != 1 || m.Params[0][1] != string([]rune(value)) {
				t.Errorf("params %q, want one with value %q", m.Params, value)
			}
		}
	})
}
