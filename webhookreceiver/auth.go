package webhookreceiver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// authenticate checks the request's credentials against the webhook secrets the organization's policies
// reference. It returns the policies that authenticated the request as strongly as the strongest did:
// when one verified a secret, a policy without one (which accepts anything) never takes the event, so an
// unsigned policy on someone else's organization id cannot capture their signed events. When a
// credential was presented, none verified, and a policy's Secret could not be read, the answer is 503
// (Smartlead retries) rather than a fall-back to the policies without a secret: the event may be that
// policy's. A request without any credential reads no Secret.
func (s *Server) authenticate(ctx context.Context, policies []bgv1.ProtectionPolicy, creds *credentials) (
	[]bgv1.ProtectionPolicy, *httpError) {
	var ok, verified []bgv1.ProtectionPolicy
	unreadable := "" // why a policy's webhook secret could not be read, if one could not
	for _, p := range policies {
		ref := p.Spec.Smartlead.WebhookSecretRef
		if ref == nil {
			key := p.Namespace + "/" + p.Name
			if _, warned := s.warnedUnsigned.LoadOrStore(key, true); !warned {
				s.Log.Info("accepting unsigned webhooks: the policy has no webhookSecretRef", "policy", key)
			}
			ok = append(ok, p)
			continue
		}
		if !creds.presented() {
			continue // nothing to verify: no Secret is read for a bare request
		}
		// One policy's missing Secret must not turn away the webhooks other policies verify.
		var secret corev1.Secret
		if err := s.secrets().Get(ctx, types.NamespacedName{Namespace: p.Namespace, Name: ref.Name}, &secret); err != nil {
			if apierrors.IsNotFound(err) {
				unreadable = fmt.Sprintf("the webhook secret of policy %s/%s is missing", p.Namespace, p.Name)
			} else {
				unreadable = fmt.Sprintf("reading the webhook secret: %v", apierrors.ReasonForError(err))
			}
			continue
		}
		secrets := string(secret.Data[ref.Key])
		if len(secretValues(secrets)) == 0 { // absent, empty, or only whitespace (emptied mid-rotation)
			unreadable = fmt.Sprintf("the webhook secret of policy %s/%s has no secret under key %q", p.Namespace, p.Name, ref.Key)
			continue
		}
		if creds.verify(secrets) {
			verified = append(verified, p)
		}
	}
	switch {
	case len(verified) > 0:
		return verified, nil
	case unreadable != "" && creds.presented():
		// It may be this policy's event: Smartlead retries it once the Secret can be read, so nothing is
		// lost, and a weaker policy never takes it meanwhile.
		return nil, unavailable("%s", unreadable)
	case len(ok) > 0:
		return ok, nil
	case !creds.presented():
		return nil, fail(http.StatusUnauthorized, "missing X-Smartlead-Signature (or the secret as the last path segment, or secret_key)")
	case creds.signature != "":
		return nil, fail(http.StatusUnauthorized, "invalid X-Smartlead-Signature")
	case creds.path != "":
		return nil, fail(http.StatusUnauthorized, "invalid webhook secret in the path")
	}
	return nil, fail(http.StatusUnauthorized, "invalid secret_key")
}

// credentials are what a request may present to prove it knows a policy's webhook secret: the
// X-Smartlead-Signature header, the secret as the last path segment, and the payload's secret_key. The
// secret_key is read from the body only when it is needed — not for a policy without a secret, nor once
// the signature or path secret has verified — so a signed webhook's body is parsed once, by ParseEvent.
type credentials struct {
	signature, path string
	body            []byte
	key             *string // the payload's secret_key once read
}

// secretKey returns the payload's secret_key, reading it from the body the first time.
func (c *credentials) secretKey() string {
	if c.key == nil {
		k := PayloadSecretKey(c.body)
		c.key = &k
	}
	return *c.key
}

// presented reports whether the request carries any credential.
func (c *credentials) presented() bool {
	return c.signature != "" || c.path != "" || c.secretKey() != ""
}

// verify reports whether one of the credentials proves one of the newline-separated secrets: a signature
// of the body, or the secret itself (path or secret_key), compared in constant time.
func (c *credentials) verify(secrets string) bool {
	if c.signature != "" && VerifySignature(c.body, c.signature, secrets) {
		return true
	}
	digests := digestsOf(secrets)
	if c.path != "" && oneOf(sha256.Sum256([]byte(c.path)), digests) {
		return true
	}
	key := c.secretKey()
	return key != "" && oneOf(sha256.Sum256([]byte(key)), digests)
}

// pathSecret returns the webhook secret given as the last path segment (POST /webhooks/smartlead/<secret>).
func pathSecret(r *http.Request) string {
	rest, ok := strings.CutPrefix(r.URL.Path, WebhookPath+"/")
	if !ok {
		return ""
	}
	return rest
}

// PayloadSecretKey returns the webhook secret key Smartlead puts in the payload itself (top-level
// secret_key, a string; "" when absent, empty or of another type). It is a credential: the caller
// compares it in constant time and never logs, stores or echoes it; ParseEvent never reads it, so no
// Event, fingerprint or status carries it.
func PayloadSecretKey(body []byte) string {
	var p struct {
		SecretKey json.RawMessage `json:"secret_key"`
	}
	if json.Unmarshal(body, &p) != nil {
		return ""
	}
	var key string
	if json.Unmarshal(p.SecretKey, &key) != nil {
		return ""
	}
	return strings.TrimSpace(key)
}

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
