package message

import (
	"iter"
	"strings"
)

// Field is one header field line: a name spelled as it arrived and its value.
type Field struct {
	Name  string
	Value string
}

// Header is an ordered list of header fields. Names keep their case and lookups ignore it.
// The zero value is an empty header ready to use. A Header is not safe for concurrent use.
type Header struct {
	fields []Field
}

// Len reports the number of field lines.
func (h *Header) Len() int { return len(h.fields) }

// Reset removes every field and keeps the storage for reuse.
func (h *Header) Reset() {
	clear(h.fields) // drop string references so they can be collected
	h.fields = h.fields[:0]
}

// Get returns the value of the first field named name (case-insensitive), or "".
func (h *Header) Get(name string) string {
	for i := range h.fields {
		if equalFold(h.fields[i].Name, name) {
			return h.fields[i].Value
		}
	}
	return ""
}

// Lookup returns the value of the first field named name and whether there is one.
func (h *Header) Lookup(name string) (string, bool) {
	for i := range h.fields {
		if equalFold(h.fields[i].Name, name) {
			return h.fields[i].Value, true
		}
	}
	return "", false
}

// Has reports whether a field named name is present.
func (h *Header) Has(name string) bool {
	_, ok := h.Lookup(name)
	return ok
}

// Values returns the values of every field named name, in order. It allocates a new slice.
func (h *Header) Values(name string) []string {
	var vs []string
	for i := range h.fields {
		if equalFold(h.fields[i].Name, name) {
			vs = append(vs, h.fields[i].Value)
		}
	}
	return vs
}

// Add appends a field line.
func (h *Header) Add(name, value string) {
	h.fields = append(h.fields, Field{Name: name, Value: value})
}

// Set replaces the value of the first field named name and removes any others with that
// name; if there is none it appends the field. The first field keeps its position and its
// name's spelling.
func (h *Header) Set(name, value string) {
	for i := range h.fields {
		if equalFold(h.fields[i].Name, name) {
			h.fields[i].Value = value
			h.delFrom(i+1, name)
			return
		}
	}
	h.Add(name, value)
}

// Del removes every field named name.
func (h *Header) Del(name string) { h.delFrom(0, name) }

func (h *Header) delFrom(start int, name string) {
	j := start
	for i := start; i < len(h.fields); i++ {
		if !equalFold(h.fields[i].Name, name) {
			h.fields[j] = h.fields[i]
			j++
		}
	}
	clear(h.fields[j:])
	h.fields = h.fields[:j]
}

// DelFunc removes every field for which del returns true.
func (h *Header) DelFunc(del func(name, value string) bool) {
	j := 0
	for i := range h.fields {
		if !del(h.fields[i].Name, h.fields[i].Value) {
			h.fields[j] = h.fields[i]
			j++
		}
	}
	clear(h.fields[j:])
	h.fields = h.fields[:j]
}

// All iterates over the field lines in order.
func (h *Header) All() iter.Seq2[string, string] {
	return func(yield func(string, string) bool) {
		for i := range h.fields {
			if !yield(h.fields[i].Name, h.fields[i].Value) {
				return
			}
		}
	}
}

// Range calls f for each field line in order until f returns false.
func (h *Header) Range(f func(name, value string) bool) {
	for i := range h.fields {
		if !f(h.fields[i].Name, h.fields[i].Value) {
			return
		}
	}
}

// Field returns the i-th field line.
func (h *Header) Field(i int) Field { return h.fields[i] }

// Fields returns the field lines. The slice aliases the header: it is valid until the
// header is next changed, and must not be changed by the caller.
func (h *Header) Fields() []Field { return h.fields }

// CopyFrom replaces h's fields with src's, reusing h's storage.
func (h *Header) CopyFrom(src *Header) {
	h.fields = append(h.fields[:0], src.fields...)
}

// Clone returns a deep copy of h.
func (h *Header) Clone() Header {
	return Header{fields: append([]Field(nil), h.fields...)}
}

// String formats the header as field lines ("Name: value\r\n"), for debugging and tests.
func (h *Header) String() string {
	var b strings.Builder
	for i := range h.fields {
		b.WriteString(h.fields[i].Name)
		b.WriteString(": ")
		b.WriteString(h.fields[i].Value)
		b.WriteString("\r\n")
	}
	return b.String()
}

// HasToken reports whether any field named name holds token in its comma-separated list,
// ignoring ASCII case and surrounding whitespace (as for Connection: close).
func (h *Header) HasToken(name, token string) bool {
	for i := range h.fields {
		if equalFold(h.fields[i].Name, name) && hasToken(h.fields[i].Value, token) {
			return true
		}
	}
	return false
}

func hasToken(list, token string) bool {
	for list != "" {
		var elem string
		elem, list, _ = strings.Cut(list, ",")
		if equalFold(strings.Trim(elem, " \t"), token) {
			return true
		}
	}
	return false
}

// equalFold is ASCII-only case-insensitive comparison; header names are ASCII tokens.
func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

// EqualFold reports whether a and b are equal ignoring ASCII case, the comparison used for
// field names.
func EqualFold(a, b string) bool { return equalFold(a, b) }
