package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestKindsSurviveWrapping(t *testing.T) {
	nf := fmt.Errorf("resolve: %w", fmt.Errorf("image %q: %w", "x:1", ErrNotFound))
	if !errors.Is(nf, ErrNotFound) || errors.Is(nf, ErrAlreadyExists) {
		t.Errorf("%v: kinds mixed up", nf)
	}
	if got, want := nf.Error(), `resolve: image "x:1": not found`; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	ae := fmt.Errorf("snapshot %q: %w", "k", ErrAlreadyExists)
	if !errors.Is(ae, ErrAlreadyExists) || errors.Is(ae, ErrNotFound) {
		t.Errorf("%v: kinds mixed up", ae)
	}
}
