package memlimit

import (
	"errors"
	"io/fs"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"201326592\n", 201326592, true},    // 192Mi, v2
		{"max\n", 0, false},                 // v2: no limit
		{"9223372036854771712\n", 0, false}, // v1: no limit
		{"0\n", 0, false},
		{"-1", 0, false},
		{"", 0, false},
		{"12k", 0, false},
	} {
		got, ok := Parse(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Parse(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFromCgroup(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if s, ok := m[name]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		ratio float64
		want  int64
		ok    bool
	}{
		{"v2 limit", map[string]string{"/sys/fs/cgroup/memory.max": "200000000\n"}, 0.9, 180000000, true},
		{"v2 unlimited: v1 not consulted", map[string]string{"/sys/fs/cgroup/memory.max": "max\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes": "100000000\n"}, 0.9, 0, false},
		{"v1 limit", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "100000000\n"}, 0.5, 50000000, true},
		{"no cgroup", map[string]string{}, 0.9, 0, false},
		{"ratio 0 sets nothing", map[string]string{"/sys/fs/cgroup/memory.max": "200000000"}, 0, 0, false},
		{"ratio over 1 refused", map[string]string{"/sys/fs/cgroup/memory.max": "200000000"}, 1.5, 0, false},
	} {
		got, ok := FromCgroup(tc.ratio, files(tc.files))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if _, ok := FromCgroup(0.9, func(string) ([]byte, error) { return nil, errors.New("denied") }); ok {
		t.Error("an unreadable cgroup gave a limit")
	}
}
