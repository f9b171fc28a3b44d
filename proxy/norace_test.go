//go:build !race

package proxy

// raceDetector reports whether the tests run under the race detector, which slows
// everything several times and takes memory of its own.
const raceDetector = false
