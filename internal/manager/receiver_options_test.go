package manager

import (
	"flag"
	"strings"
	"testing"
)

// --receiver-max-buffer: 64 MiB by default; 0 (no bound) or at least twice --receiver-max-body (a body of
// unknown length holds its old and new buffer while it grows), else the largest bodies could never be read.
func TestReceiverMaxBufferFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int64
		err  string
	}{
		{nil, 64 << 20, ""},
		{[]string{"--receiver-max-buffer=0"}, 0, ""},
		{[]string{"--receiver-max-buffer=2097152", "--receiver-max-body=1048576"}, 2 << 20, ""},
		{[]string{"--receiver-max-buffer=2097151", "--receiver-max-body=1048576"}, 0, "at least twice --receiver-max-body"},
		{[]string{"--receiver-max-buffer=-1"}, 0, "at least twice --receiver-max-body"},
	} {
		var o Options
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		o.BindFlags(fs)
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		err := o.Validate()
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%v: error %v, want one containing %q", c.args, err, c.err)
		case c.err == "" && o.ReceiverMaxBuffer != c.want:
			t.Errorf("%v: %d, want %d", c.args, o.ReceiverMaxBuffer, c.want)
		}
	}
}
