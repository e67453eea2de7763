package testenv

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// isNotYetServed reports the errors a freshly established CRD answers with before it serves creates.
func isNotYetServed(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsMethodNotSupported(err)
}
