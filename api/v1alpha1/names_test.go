package v1alpha1

import (
	"strings"
	"testing"
)

func TestMailboxNames(t *testing.T) {
	names := MailboxNames("alice@acme.com")
	if names[0] != "alice-acme-com" || len(names) != 2 || !strings.HasPrefix(names[1], "alice-acme-com-") {
		t.Fatalf("got %v", names)
	}
	if MailboxNames("a.b@x.com")[1] == MailboxNames("a-b@x.com")[1] {
		t.Fatal("colliding plain names must differ in their hashed form")
	}
	long := strings.Repeat("x", 240) + "@acme.com"
	for _, n := range MailboxNames(long) {
		if len(n) > 253 {
			t.Fatalf("name too long: %d", len(n))
		}
	}
}
