package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// MailboxNames returns the names a discovered Mailbox may take, in order: the address made into a
// Kubernetes name (alice@acme.com → alice-acme-com), then that name with a digest of the address, for
// the rare address whose plain name is taken by another or is too long.
func MailboxNames(email string) []string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(email) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	plain := strings.Trim(b.String(), "-")
	sum := sha256.Sum256([]byte(email))
	suffix := hex.EncodeToString(sum[:4])
	if len(plain) > 200 {
		plain = strings.Trim(plain[:200], "-")
	}
	hashed := suffix
	if plain != "" {
		hashed = plain + "-" + suffix
	}
	if plain == "" {
		return []string{hashed}
	}
	return []string{plain, hashed}
}
