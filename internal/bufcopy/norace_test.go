//go:build !race

package bufcopy

const raceEnabled = false
