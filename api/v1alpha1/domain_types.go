package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DomainSpec configures the protection of one sending domain.
type DomainSpec struct {
	// PolicyRef names the ProtectionPolicy whose domain rules and mode apply; default: the policy named "default".
	// +kubebuilder:default={name: default}
	// +optional
	PolicyRef LocalPolicyReference `json:"policyRef,omitzero"`
}

// DomainStatus is the observed state of a Domain, aggregated from its mailboxes.
type DomainStatus struct {
	// ObservedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Mailboxes is the number of Mailboxes that send from this domain.
	// +optional
	Mailboxes int32 `json:"mailboxes"`
	// UnhealthyMailboxes is the number of those whose own health is Warning or Paused.
	// +optional
	UnhealthyMailboxes int32 `json:"unhealthyMailboxes"`
	// PausedMailboxes is the number of those that are paused in Smartlead (their condition Paused=True), for any reason.
	// +optional
	PausedMailboxes int32 `json:"pausedMailboxes"`
	// UnhealthyPercent is UnhealthyMailboxes as a whole percentage of Mailboxes.
	// +optional
	UnhealthyPercent int32 `json:"unhealthyPercent"`
	// Health is the domain's protection state.
	// +optional
	Health Health `json:"health,omitempty"`
	// HealthReason names the rule behind the current health (BounceThreshold, CooldownElapsed, CleanSends, ...).
	// +optional
	HealthReason string `json:"healthReason,omitempty"`
	// HealthMessage is the evidence for the current health, e.g. "5 bounces in the last 100 sends (pause at 5/100)".
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	HealthMessage string `json:"healthMessage,omitempty"`
	// PauseCount is the number of consecutive pauses of the domain; it sets the cooldown ladder.
	// +optional
	PauseCount int32 `json:"pauseCount,omitempty"`
	// PausedAt is when the current pause began.
	// +optional
	PausedAt *metav1.Time `json:"pausedAt,omitempty"`
	// ResumeAt is when the current pause's cooldown ends.
	// +optional
	ResumeAt *metav1.Time `json:"resumeAt,omitempty"`
	// HealthySince is when the domain last turned Healthy; once it has stayed Healthy for
	// recovery.maxCooldown, the cooldown ladder (pauseCount) starts again.
	// +optional
	HealthySince *metav1.Time `json:"healthySince,omitempty"`
	// UnhealthyAtRecovery is unhealthyMailboxes when the domain entered Recovering; more than this
	// while Recovering pauses the domain again.
	// +optional
	UnhealthyAtRecovery int32 `json:"unhealthyAtRecovery,omitempty"`
	// ResumeRequest is the last value of the bounceguard.io/resume annotation that was acted on.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ResumeRequest string `json:"resumeRequest,omitempty"`
	// Conditions include Ready, Warning and Paused.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Domain is one sending domain; its name is the domain itself (e.g. acme.com).
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=dom,categories=bounceguard
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\\\.)+[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a domain name such as acme.com"
// +kubebuilder:printcolumn:name="Health",type=string,JSONPath=`.status.health`
// +kubebuilder:printcolumn:name="Mailboxes",type=integer,JSONPath=`.status.mailboxes`
// +kubebuilder:printcolumn:name="Unhealthy(%)",type=integer,JSONPath=`.status.unhealthyPercent`
// +kubebuilder:printcolumn:name="Paused",type=integer,JSONPath=`.status.pausedMailboxes`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Domain struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec configures the domain's protection.
	// +kubebuilder:default={}
	// +optional
	Spec DomainSpec `json:"spec,omitzero"`
	// Status is aggregated from the domain's mailboxes.
	// +optional
	Status DomainStatus `json:"status,omitempty"`
}

// DomainList is a list of Domain.
// +kubebuilder:object:root=true
type DomainList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the domains.
	Items []Domain `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Domain{}, &DomainList{})
}
