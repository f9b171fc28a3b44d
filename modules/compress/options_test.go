package compress

import (
	"errors"
	"strings"
	"testing"
)

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name  string
		opts  Options
		field string // "" when valid
	}{
		{"zero", Options{}, ""},
		{"all set", Options{Codings: []string{"gzip", "br"}, ContentTypes: []string{"text/html", "application/*+json", "image/*"},
			MinSize: 1, GzipLevel: 9, BrotliQuality: 11, ZstdLevel: 22}, ""},
		{"empty codings", Options{Codings: []string{}}, "Codings"},
		{"unknown coding", Options{Codings: []string{"deflate"}}, "Codings"},
		{"identity coding", Options{Codings: []string{"identity"}}, "Codings"},
		{"duplicate coding", Options{Codings: []string{"gzip", "x-gzip"}}, "Codings"},
		{"bad type", Options{ContentTypes: []string{"text"}}, "ContentTypes"},
		{"star type", Options{ContentTypes: []string{"*/*"}}, "ContentTypes"},
		{"bad suffix", Options{ContentTypes: []string{"application/*+"}}, "ContentTypes"},
		{"negative size", Options{MinSize: -1}, "MinSize"},
		{"gzip level", Options{GzipLevel: 10}, "GzipLevel"},
		{"gzip level negative", Options{GzipLevel: -1}, "GzipLevel"},
		{"brotli quality", Options{BrotliQuality: 12}, "BrotliQuality"},
		{"zstd level", Options{ZstdLevel: 23}, "ZstdLevel"},
		{"max streams", Options{MaxStreams: -1}, "MaxStreams"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.opts)
			if tt.field == "" {
				if err != nil || m == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrOptions) {
				t.Fatalf("New: %v, want an error wrapping ErrOptions", err)
			}
			if strings.Count(err.Error(), tt.field) != 1 {
				t.Errorf("New: %q does not name %s once", err, tt.field)
			}
		})
	}
}

func TestDecoderOptionsValidation(t *testing.T) {
	for _, tt := range []struct {
		opts  DecoderOptions
		field string
	}{
		{DecoderOptions{}, ""},
		{DecoderOptions{Codings: []string{"br"}, MaxDecodedSize: 1}, ""},
		{DecoderOptions{Codings: []string{}}, "Codings"},
		{DecoderOptions{Codings: []string{"compress"}}, "Codings"},
		{DecoderOptions{MaxDecodedSize: -5}, "MaxDecodedSize"},
	} {
		_, err := NewDecoder(tt.opts)
		if tt.field == "" {
			if err != nil {
				t.Errorf("NewDecoder(%+v): %v", tt.opts, err)
			}
			continue
		}
		if !errors.Is(err, ErrOptions) || strings.Count(err.Error(), tt.field) != 1 {
			t.Errorf("NewDecoder(%+v): %v, want ErrOptions naming %s once", tt.opts, err, tt.field)
		}
	}
}

func TestContentTypes(t *testing.T) {
	m, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for ct, want := range map[string]bool{
		"text/html":                       true,
		"TEXT/HTML; charset=utf-8":        true,
		"text/event-stream":               true,
		"application/json":                true,
		"application/problem+json":        true,
		"application/javascript;charset=": true,
		"image/svg+xml":                   true,
		"application/wasm":                true,
		"application/atom+xml":            true,
		"image/png":                       false,
		"application/octet-stream":        false,
		"application/zip":                 false,
		"":                                false,
		"text":                            false,
		"font/woff2":                      false,
		"application/+json":               false,
	} {
		if got := m.cfg.compressible(ct); got != want {
			t.Errorf("compressible(%q) = %v, want %v", ct, got, want)
		}
	}
}
