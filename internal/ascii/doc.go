// Package ascii compares protocol tokens (field names, schemes, upgrade protocols) the
// way HTTP does: case-insensitively, over ASCII only.
package ascii
