package webhookreceiver

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
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
	for _, secret := range secretValues(secrets) {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		// Check every secret, so the time taken does not tell which one matched.
		if hmac.Equal(mac.Sum(nil), got) {
			ok = true
		}
	}
	return ok
}

// secretValues splits a Secret value holding several newline-separated secrets or tokens (a rotation).
func secretValues(values string) []string {
	var out []string
	for _, v := range strings.Split(values, "\n") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// digestsOf returns the SHA-256 digests of the newline-separated values.
func digestsOf(values string) [][sha256.Size]byte {
	var out [][sha256.Size]byte
	for _, v := range secretValues(values) {
		out = append(out, sha256.Sum256([]byte(v)))
	}
	return out
}

// oneOf reports whether digest is one of digests, comparing every one of them in constant time, so that
// the time taken tells nothing of which matched.
func oneOf(digest [sha256.Size]byte, digests [][sha256.Size]byte) bool {
	ok := 0
	for _, d := range digests {
		ok |= subtle.ConstantTimeCompare(d[:], digest[:])
	}
	return ok == 1
}

// Sign returns the X-Smartlead-Signature value for body under secret (used by tests and load tools).
func Sign(body []byte, secret string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}
