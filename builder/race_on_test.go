//go:build race

package builder_test

// raceEnabled: the race detector is on (it changes what allocates).
const raceEnabled = true
