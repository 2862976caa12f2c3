//go:build race

package bufcopy

// raceEnabled: the race detector makes sync.Pool drop some of what is put
// back, so a pooled buffer is not always reused.
const raceEnabled = true
