//go:build !unix

package disk

import "os"

// lockDir creates the lock file at name. Outside Unix there is no flock: nothing stops
// two stores from opening one directory, and the caller must ensure only one does.
func lockDir(name string) (func() error, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, err
	}
	return f.Close, nil
}
