// Package metadata is the store's bbolt database, shared by every strata
// process that uses one store root.
//
// A DB is opened for each transaction and closed right after it, so several
// processes take turns on the file: bbolt's file lock serializes them, and a
// mutex serializes the goroutines of one process (a second open of the same
// file in one process would wait on its own lock). Callers keep transactions
// short and do no filesystem work inside them.
package metadata

import (
	"fmt"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DB is the metadata database at one path.
type DB struct {
	path string
	mu   sync.Mutex
}

// Open returns the database at path, creating it on first use.
func Open(path string) (*DB, error) {
	d := &DB{path: path}
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return d, nil // an existing file needs no write (and no fsync) to open
	}
	if err := d.Update(func(*bolt.Tx) error { return nil }); err != nil {
		return nil, err
	}
	return d, nil
}

// Path is the database file.
func (d *DB) Path() string { return d.path }

func (d *DB) open(readOnly bool) (*bolt.DB, error) {
	// The freelist is synced: every transaction opens the file, and an
	// unsynced freelist would be rebuilt by scanning the whole file each time.
	// Readers share the file lock, so several processes read at once.
	db, err := bolt.Open(d.path, 0o600, &bolt.Options{Timeout: 5 * time.Minute, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("open metadata %s: %w", d.path, err)
	}
	return db, nil
}

// Update runs fn in a read-write transaction.
func (d *DB) Update(fn func(*bolt.Tx) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	db, err := d.open(false)
	if err != nil {
		return err
	}
	if err := db.Update(fn); err != nil {
		db.Close()
		return err
	}
	return db.Close()
}

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(*bolt.Tx) error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	db, err := d.open(true)
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(fn)
}
