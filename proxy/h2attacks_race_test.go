//go:build race

package proxy

// h2attacksRace reports whether the tests run under the race detector, which slows
// everything several times and takes memory of its own.
const h2attacksRace = true
