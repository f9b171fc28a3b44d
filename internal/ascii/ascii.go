package ascii

// EqualFoldLower reports whether s equals lower, which must be in lower case, ignoring
// ASCII case in s. It allocates nothing, for strings and byte slices alike.
func EqualFoldLower[T ~string | ~[]byte](s T, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
