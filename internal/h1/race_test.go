//go:build race

package h1

// raceEnabled is true under the race detector, where sync.Pool drops items at
// random, so allocation counts are not meaningful.
const raceEnabled = true
