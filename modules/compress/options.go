package compress

import (
	"errors"
	"fmt"
	"strings"
)

// Defaults of [Options].
const (
	// DefaultMinSize is the smallest known Content-Length compressed when
	// [Options.MinSize] is zero: below about a packet, compression saves nothing worth
	// its CPU, and a gzip stream's own overhead is 18 bytes.
	DefaultMinSize = 256
	// DefaultGzipLevel is gzip's level when [Options.GzipLevel] is zero (as nginx's
	// gzip_comp_level 6 and zlib's default).
	DefaultGzipLevel = 6
	// DefaultBrotliQuality is Brotli's quality when [Options.BrotliQuality] is zero:
	// the quality where Brotli still costs about what gzip 6 costs.
	DefaultBrotliQuality = 5
	// DefaultZstdLevel is Zstandard's level when [Options.ZstdLevel] is zero (zstd's own
	// default).
	DefaultZstdLevel = 3
	// DefaultMaxStreams is [Options.MaxStreams] when it is zero: at the default levels
	// at most about 480 MiB of encoders if all are zstd (~1.9 MiB each), 270 MiB if all
	// are gzip (~1.05 MiB each).
	DefaultMaxStreams = 256
	// BrotliWindowBits is the base-2 logarithm of Brotli's window (256 KiB), fixed: a
	// larger window keeps more memory per stream for a few percent on large bodies.
	BrotliWindowBits = 18
	// ZstdWindowSize is Zstandard's window (256 KiB), fixed for the same reason; RFC 8878
	// §3 lets a decoder refuse windows above 8 MiB, so any client decodes it.
	ZstdWindowSize = 256 << 10
)

// DefaultContentTypes are the media types compressed when [Options.ContentTypes] is nil:
// text, and the structured or script types that compress well. Images (but SVG), audio,
// video, fonts in WOFF/WOFF2 and archives are compressed already.
var defaultContentTypes = []string{
	"text/*",
	"application/json", "application/*+json", "application/x-ndjson",
	"application/javascript", "application/x-javascript", "application/ecmascript",
	"application/xml", "application/*+xml",
	"application/wasm",
	"application/x-www-form-urlencoded",
	"image/svg+xml", "image/x-icon", "image/bmp",
	"font/ttf", "font/otf",
}

// DefaultContentTypes returns a copy of the media types compressed when
// [Options.ContentTypes] is nil: "text/*", JSON, JavaScript, XML (and the "+json",
// "+xml" types), WebAssembly, SVG, icons, BMP and uncompressed fonts.
func DefaultContentTypes() []string { return append([]string(nil), defaultContentTypes...) }

// Options configure a [Module]. The zero value is ready to use: zstd, br and gzip
// preferred in that order, [DefaultContentTypes], responses from [DefaultMinSize] bytes,
// gzip level 6, Brotli quality 5, zstd level 3.
type Options struct {
	// Codings lists the codings the module may produce, most preferred first: when a
	// client weighs several the same (as "gzip, br, zstd" does), the first of these
	// wins. Names are "zstd", "br" and "gzip", each at most once. If nil: zstd, br,
	// gzip. An empty non-nil slice is refused (a module that never compresses).
	Codings []string
	// ContentTypes lists the media types compressed, matched against the response's
	// Content-Type without its parameters (charset and the like), case-insensitively.
	// An entry is "type/subtype", "type/*" or "type/*+suffix" ("application/*+json").
	// A response with no Content-Type is not compressed. If nil: [DefaultContentTypes].
	ContentTypes []string
	// MinSize is the smallest Content-Length compressed, in bytes; a response whose
	// length is not known in advance (chunked, or HTTP/2 without content-length) is
	// compressed whatever its size. If zero, [DefaultMinSize]; negative is refused.
	MinSize int64
	// GzipLevel is gzip's level, 1 (fastest) to 9 (smallest). If zero, 6. Levels 6
	// to 9 run zlib's lazy matching with zlib's parameters for the level (those of
	// nginx's gzip_comp_level): level 6 codes text a little smaller than zlib's (and
	// nginx's) level 6, for about two thirds of its CPU. Levels 1 to 5 are
	// klauspost/compress's single-pass matchers: level 5 codes text about 2.5% larger
	// for about a fifth of zlib's CPU (docs/modules-compress.md has the figures).
	GzipLevel int
	// BrotliQuality is Brotli's quality, 1 to 11; quality 0 is not offered. If zero, 5.
	// Qualities above 5 cost several times more CPU per byte: see docs/modules-compress.md.
	BrotliQuality int
	// MaxStreams bounds the responses the module compresses at once, and so its
	// memory (see the package doc for the memory of one stream); a response beyond it
	// is sent as it is (with Vary: Accept-Encoding). If zero, [DefaultMaxStreams];
	// negative is refused.
	MaxStreams int
	// ZstdLevel is Zstandard's level, 1 to 22, mapped onto the four levels of the
	// encoder used (1: fastest, 2–5: default, 6–9: better, 10+: best). If zero, 3.
	ZstdLevel int
}

// ErrOptions is wrapped by every error [New] and [NewDecoder] return for bad options.
var ErrOptions = errors.New("compress: invalid options")

// config is validated options, in the form the hot path reads.
type config struct {
	prefs      []Coding
	types      []typePattern
	minSize    int64
	gzipLevel  int
	brQuality  int
	zstdLevel  int
	maxStreams int64
}

// typePattern is one ContentTypes entry: "major/minor", "major/*" or "major/*+suffix".
type typePattern struct {
	major, minor string // minor "" for "*"
	suffix       string // "+json" for "*+json"
}

func (o Options) config() (config, error) {
	c := config{
		minSize:    o.MinSize,
		gzipLevel:  o.GzipLevel,
		brQuality:  o.BrotliQuality,
		zstdLevel:  o.ZstdLevel,
		maxStreams: int64(o.MaxStreams),
	}
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrOptions, field, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Codings == nil:
		c.prefs = []Coding{Zstd, Brotli, Gzip}
	case len(o.Codings) == 0:
		return c, bad("Codings", "empty: the module would never compress (leave it nil for the default)")
	default:
		seen := map[Coding]bool{}
		for _, name := range o.Codings {
			cd, ok := ParseCoding(strings.TrimSpace(name))
			if !ok || cd == Identity {
				return c, bad("Codings", "%q is not one of zstd, br, gzip", name)
			}
			if seen[cd] {
				return c, bad("Codings", "%q is listed twice", name)
			}
			seen[cd] = true
			c.prefs = append(c.prefs, cd)
		}
	}
	types := o.ContentTypes
	if types == nil {
		types = defaultContentTypes
	}
	for _, t := range types {
		p, ok := parsePattern(t)
		if !ok {
			return c, bad("ContentTypes", "%q is not type/subtype, type/* or type/*+suffix", t)
		}
		c.types = append(c.types, p)
	}
	switch {
	case c.minSize == 0:
		c.minSize = DefaultMinSize
	case c.minSize < 0:
		return c, bad("MinSize", "%d is negative", o.MinSize)
	}
	switch {
	case c.maxStreams == 0:
		c.maxStreams = DefaultMaxStreams
	case c.maxStreams < 0:
		return c, bad("MaxStreams", "%d is negative", o.MaxStreams)
	}
	switch {
	case c.gzipLevel == 0:
		c.gzipLevel = DefaultGzipLevel
	case c.gzipLevel < 1 || c.gzipLevel > 9:
		return c, bad("GzipLevel", "%d is not between 1 and 9", o.GzipLevel)
	}
	switch {
	case c.brQuality == 0:
		c.brQuality = DefaultBrotliQuality
	case c.brQuality < 1 || c.brQuality > 11:
		return c, bad("BrotliQuality", "%d is not between 1 and 11", o.BrotliQuality)
	}
	switch {
	case c.zstdLevel == 0:
		c.zstdLevel = DefaultZstdLevel
	case c.zstdLevel < 1 || c.zstdLevel > 22:
		return c, bad("ZstdLevel", "%d is not between 1 and 22", o.ZstdLevel)
	}
	return c, nil
}

func parsePattern(s string) (typePattern, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	major, minor, ok := strings.Cut(s, "/")
	if !ok || !isToken(major) || major == "*" {
		return typePattern{}, false
	}
	switch {
	case minor == "*":
		return typePattern{major: major}, true
	case strings.HasPrefix(minor, "*+"):
		if !isToken(minor[2:]) || strings.Contains(minor[2:], "*") {
			return typePattern{}, false
		}
		return typePattern{major: major, suffix: minor[1:]}, true
	case isToken(minor) && !strings.Contains(minor, "*"):
		return typePattern{major: major, minor: minor}, true
	}
	return typePattern{}, false
}

// compressible reports whether the Content-Type value ct matches a pattern; parameters
// are ignored.
func (c *config) compressible(ct string) bool {
	mt, _ := cutByte(ct, ';')
	mt = trimOWS(mt)
	major, minor := cutByte(mt, '/')
	if major == "" || minor == "" {
		return false
	}
	for i := range c.types {
		p := &c.types[i]
		if !eqFold(major, p.major) {
			continue
		}
		switch {
		case p.minor != "":
			if eqFold(minor, p.minor) {
				return true
			}
		case p.suffix != "":
			if len(minor) > len(p.suffix) && eqFold(minor[len(minor)-len(p.suffix):], p.suffix) {
				return true
			}
		default:
			return true
		}
	}
	return false
}
