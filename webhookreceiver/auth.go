package webhookreceiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// signaturePrefix is the only accepted scheme of X-Smartlead-Signature: the sender cannot pick the hash.
const signaturePrefix = "sha256="

// VerifySignature reports whether header is "sha256=<hex HMAC-SHA256 of body>" under one of the
// newline-separated secrets (several during a rotation). Comparisons take constant time.
func VerifySignature(body []byte, header string, secrets string) bool {
	if !strings.HasPrefix(header, signaturePrefix) {
		return false
	}
	got, err := hex.DecodeString(strings.TrimSpace(header[len(signaturePrefix):]))
	if err != nil || len(got) != sha256.Size {
		return false
	}
	ok := false
	for _, secret := range strings.Split(secrets, "\n") {
		secret = strings.TrimSpace(secret)
		if secret == "" {
			continue
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		// Check every secret, so the time taken does not tell which one matched.
		if hmac.Equal(mac.Sum(nil), got) {
			ok = true
		}
	}
	return ok
}

// Sign returns the X-Smartlead-Signature value for body under secret (used by tests and load tools).
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}
