package v1alpha1

// Health is the protection state of a Mailbox or a Domain.
// +kubebuilder:validation:Enum=Healthy;Warning;Paused;Recovering
type Health string

const (
	// HealthHealthy means the bounce rate is below every threshold.
	HealthHealthy Health = "Healthy"
	// HealthWarning means the warning threshold is reached; sending goes on.
	HealthWarning Health = "Warning"
	// HealthPaused means the pause threshold was reached; in Enforce mode sending is paused.
	HealthPaused Health = "Paused"
	// HealthRecovering means a pause has ended and the entity must prove itself clean.
	HealthRecovering Health = "Recovering"
)

// LocalPolicyReference names a ProtectionPolicy in the same namespace.
type LocalPolicyReference struct {
	// Name of the ProtectionPolicy in the same namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// SecretKeySelector names one key of a Secret in the policy's namespace.
type SecretKeySelector struct {
	// Name of the Secret, in the namespace of the ProtectionPolicy.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// Key within the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Key string `json:"key"`
}

// DefaultPolicyName is the policy a Mailbox or Domain without policyRef belongs to, and the policy
// auto-discovered Mailboxes and operator-created Domains are given when the namespace has one.
const DefaultPolicyName = "default"

// NameOrDefault returns the referenced policy's name, DefaultPolicyName when empty.
func (r LocalPolicyReference) NameOrDefault() string {
	if r.Name == "" {
		return DefaultPolicyName
	}
	return r.Name
}

// PolicyName returns the name of the ProtectionPolicy whose rules govern the mailbox.
func (m *Mailbox) PolicyName() string { return m.Spec.PolicyRef.NameOrDefault() }

// PolicyName returns the name of the ProtectionPolicy whose rules govern the domain.
func (d *Domain) PolicyName() string { return d.Spec.PolicyRef.NameOrDefault() }
