// Package durable writes small files so that they survive a crash of the
// process or of the machine: whole, or not at all.
package durable

import (
	"os"
	"path/filepath"
)

// WriteFile replaces name with data: it writes a temporary file beside it,
// fsyncs it, renames it over name and fsyncs the directory. A crash leaves
// either the old content or the new one (and perhaps name+".tmp").
func WriteFile(name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err == nil {
		err = SyncDir(filepath.Dir(name))
	}
	return err
}

// SyncDir fsyncs a directory: the creations, renames and removals in it
// are then on disk.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
