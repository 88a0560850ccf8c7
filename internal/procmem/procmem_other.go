//go:build !linux

package procmem

import "errors"

var errUnsupported = errors.New("procmem: only on Linux")

// ReleaseStartupPages does nothing outside Linux.
func ReleaseStartupPages() (before, after Resident, err error) {
	return Resident{}, Resident{}, errUnsupported
}

// ReadResident is not available outside Linux.
func ReadResident() (Resident, error) { return Resident{}, errUnsupported }
