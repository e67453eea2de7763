package notify

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/types"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
)

// renderJSON builds the generic JSON document: the summary, the policy, its mode and every notice.
func renderJSON(summary string, policy types.NamespacedName, mode bgv1.Mode, batch []bgv1.Notice) ([]byte, error) {
	return json.Marshal(struct {
		Summary   string        `json:"summary"`
		Namespace string        `json:"namespace"`
		Policy    string        `json:"policy"`
		Mode      string        `json:"mode"`
		Notices   []bgv1.Notice `json:"notices"`
	}{summary, policy.Namespace, policy.Name, string(mode), batch})
}
