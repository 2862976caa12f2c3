//go:build linux

package network

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Namespace is a fresh network namespace with loopback up, held by an OS
// thread of the current process until Close; the thread then returns to
// the process's namespace, and the kernel frees the namespace once nothing
// else is in it. An OCI runtime joins it by
// Path; Attach links it by Tid.
type Namespace struct {
	// Tid is the holding thread's id.
	Tid  int
	done chan struct{}
	exit chan struct{}
}

// NewNamespace creates a network namespace and brings its loopback up.
func NewNamespace() (*Namespace, error) {
	ns := &Namespace{done: make(chan struct{}), exit: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		defer close(ns.exit)
		runtime.LockOSThread()
		restore, err := joinNamespace("")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		// Back in its own namespace the thread serves others again; if
		// it cannot return, it stays locked and ends with the goroutine.
		defer func() {
			if restore() == nil {
				runtime.UnlockOSThread()
			}
		}()
		if err := LoopbackUp(); err != nil {
			errc <- err
			return
		}
		ns.Tid = unix.Gettid()
		errc <- nil
		<-ns.done
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return ns, nil
}

// Path is the namespace's file, valid until Close.
func (ns *Namespace) Path() string {
	return fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), ns.Tid)
}

// Close releases the namespace.
func (ns *Namespace) Close() {
	close(ns.done)
	<-ns.exit
}

// LoopbackUp brings up "lo" in the calling thread's network namespace.
func LoopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	return nil
}
