package registry

import (
	"testing"
	"time"
)

// SetRetryBackoff makes retries wait d after a first failure until the test
// ends, so tests of failing registries run fast.
func SetRetryBackoff(t testing.TB, d time.Duration) {
	old := retryBackoff
	retryBackoff = d
	t.Cleanup(func() { retryBackoff = old })
}

// SetProgressInterval makes uploads report their bytes every d until the
// test ends.
func SetProgressInterval(t testing.TB, d time.Duration) {
	old := progressInterval
	progressInterval = d
	t.Cleanup(func() { progressInterval = old })
}
