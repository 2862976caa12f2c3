//go:build !linux

package executor

import (
	"context"
	"errors"
	"time"
)

// errUnsupported is returned where Linux namespaces are missing.
var errUnsupported = errors.New("the sandbox needs Linux namespaces")

// DefaultPath is the PATH of a run whose Env has none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// SandboxOptions configures a Sandbox.
type SandboxOptions struct {
	StateDir    string
	StopTimeout time.Duration
}

// DefaultStopTimeout is the grace a cancelled command gets.
const DefaultStopTimeout = 10 * time.Second

// Sandbox is unavailable outside Linux.
type Sandbox struct{}

// MaybeInit returns at once outside Linux.
func MaybeInit() {}

// NewSandbox fails outside Linux.
func NewSandbox(opts SandboxOptions) (*Sandbox, error) { return nil, errUnsupported }

// Run fails outside Linux.
func (s *Sandbox) Run(ctx context.Context, spec Spec, io IO) error { return errUnsupported }
