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

// Condition types owned by bounceguard.
const (
	// ConditionReady reports whether the object can be acted on (policy found, Secrets present, ...).
	ConditionReady = "Ready"
	// ConditionWarning is True while the warning threshold is reached.
	ConditionWarning = "Warning"
	// ConditionPaused is True only while sending is actually paused in Smartlead (Enforce).
	ConditionPaused = "Paused"
	// ConditionPauseRecommended is True in Suggest mode when Enforce would pause.
	ConditionPauseRecommended = "PauseRecommended"
	// ConditionPausingAllowed is a ProtectionPolicy condition: False while the safety limit holds back pauses.
	ConditionPausingAllowed = "PausingAllowed"
	// ConditionAccountFound is False while the last account sync found no Smartlead account for the mailbox.
	// It appears once a sync has missed the account and stays (True) after it is found again.
	ConditionAccountFound = "AccountFound"
	// ConditionDrifted is True while Smartlead shows a mailbox bounceguard holds paused sending again.
	ConditionDrifted = "Drifted"
	// ConditionUnmonitored is True while Smartlead counts clearly more sends today than bounceguard received
	// webhooks for: the mailbox is not protected.
	ConditionUnmonitored = "Unmonitored"
)

// Annotations and labels understood by bounceguard.
const (
	// AnnotationResume, set to any new value on a paused Mailbox or Domain, resumes it by hand.
	AnnotationResume = "bounceguard.io/resume"
	// AnnotationHold, set to any non-empty reason on a Mailbox, holds it Paused (reason Hold; in Enforce
	// also in Smartlead) until it is removed, with no cooldown.
	AnnotationHold = "bounceguard.io/hold"
	// AnnotationSync, set to any new value on a ProtectionPolicy, runs its account sync now.
	AnnotationSync = "bounceguard.io/sync"
	// LabelManagedBy marks objects that bounceguard created itself.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy on objects bounceguard created.
	ManagedByValue = "bounceguard"
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
