// Package memlimit derives the Go runtime's soft memory limit (GOMEMLIMIT) from the container's memory
// limit, so that the garbage collector works harder before the kernel's OOM killer has to.
package memlimit

import (
	"os"
	"strconv"
	"strings"
)

// cgroupFiles hold the memory limit of the process's cgroup: v2 first, then v1.
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// unlimitedV1 is what cgroup v1 reports for "no limit" (a page-rounded max int64) or more.
const unlimitedV1 = 1 << 62

// Parse reads a cgroup memory limit file's content: bytes, or false for "max", no limit or garbage.
func Parse(content string) (int64, bool) {
	s := strings.TrimSpace(content)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= unlimitedV1 {
		return 0, false
	}
	return n, true
}

// FromCgroup returns ratio of the container's memory limit, or false when there is none (or ratio is not
// in (0, 1]). readFile is os.ReadFile outside tests.
func FromCgroup(ratio float64, readFile func(string) ([]byte, error)) (int64, bool) {
	if ratio <= 0 || ratio > 1 {
		return 0, false
	}
	if readFile == nil {
		readFile = os.ReadFile
	}
	for _, f := range cgroupFiles {
		data, err := readFile(f)
		if err != nil {
			continue
		}
		if limit, ok := Parse(string(data)); ok {
			return int64(float64(limit) * ratio), true
		}
		return 0, false
	}
	return 0, false
}
