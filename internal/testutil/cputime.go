package testutil

import (
	"time"

	"golang.org/x/sys/unix"
)

// CPUTime is the CPU time, user and system, the process has used: a
// benchmark measure that other work on a shared machine disturbs less than
// wall time.
func CPUTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
