package h1

// Limits bounds what the parser accepts. Zero fields mean the default.
type Limits struct {
	// MaxHeadBytes bounds the whole head, including the start line and the final empty
	// line (leading empty lines before a request line are not counted). If zero, 32 KiB.
	// Exceeding it is an [Error] with Status 431 for a request.
	MaxHeadBytes int
	// MaxFields bounds the number of field lines in a head or a trailer section. If
	// zero, 100. Exceeding it is an [Error] with Status 431.
	MaxFields int
	// MaxLineBytes bounds any single line (start line, field line, chunk size line),
	// not counting its line terminator. If zero, 8 KiB. Exceeding it is an [Error] with
	// Status 431, or 414 for a request line.
	MaxLineBytes int
}

// MaxMethodBytes bounds the method of a request. The longest registered method
// ("UPDATEREDIRECTREF") has 17 bytes; a longer one than this is an [Error] with Status
// 501, as RFC 9112 §3 asks of a method longer than any the server implements.
const MaxMethodBytes = 32

// Default limits.
const (
	DefaultMaxHeadBytes = 32 << 10
	DefaultMaxFields    = 100
	DefaultMaxLineBytes = 8 << 10
)

// withDefaults returns l with zero (or negative) fields replaced by defaults.
func (l *Limits) withDefaults() Limits {
	var r Limits
	if l != nil {
		r = *l
	}
	if r.MaxHeadBytes <= 0 {
		r.MaxHeadBytes = DefaultMaxHeadBytes
	}
	if r.MaxFields <= 0 {
		r.MaxFields = DefaultMaxFields
	}
	if r.MaxLineBytes <= 0 {
		r.MaxLineBytes = DefaultMaxLineBytes
	}
	return r
}
