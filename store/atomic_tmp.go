package store

import (
	"io"
	"os"
	"path/filepath"
)

// writeFileAtomic is replaced by internal/atomicfile on merge.
func writeFileAtomic(p string, fn func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), p)
}
