package v1alpha1

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MailboxSpec identifies one Smartlead sending mailbox.
type MailboxSpec struct {
	// Email is the mailbox's sending address, lowercase. It cannot be changed.
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=254
	// +kubebuilder:validation:Pattern=`^[a-z0-9.!#$%&'*+/=?^_{|}~-]+@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="email is immutable"
	Email string `json:"email"`
	// SmartleadAccountID is the Smartlead email account id; when absent it is resolved from Smartlead by email.
	// +kubebuilder:validation:Minimum=1
	// +optional
	SmartleadAccountID *int64 `json:"smartleadAccountID,omitempty"`
	// PolicyRef names the ProtectionPolicy that governs the mailbox; default: the policy named "default".
	// +kubebuilder:default={name: default}
	// +optional
	PolicyRef LocalPolicyReference `json:"policyRef,omitzero"`
}

// Ledger is the bounded bookkeeping behind the rolling window and de-duplication. It is written by the
// webhook receiver together with the counters, in the same status update, so that both stay consistent.
// It stays small however many events a mailbox sees, so that a Mailbox stays under 4 KiB of JSON.
type Ledger struct {
	// WindowStartSent is the value of status.sent when the current rolling window started (Recovering starts a fresh one).
	// +optional
	WindowStartSent int64 `json:"windowStartSent,omitempty"`
	// BounceMarks holds, for each of the 20 most recent counted bounces, the value of status.sent when it
	// arrived, oldest first; only marks within the last 1000 sends are kept.
	// +kubebuilder:validation:MaxItems=1000
	// +listType=atomic
	// +optional
	BounceMarks []int64 `json:"bounceMarks,omitempty"`
	// Recent holds 40-bit digests of the ids of the most recent events recorded (base64, oldest first),
	// used to drop duplicates: enough for 2 hours at 100 events an hour.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Recent string `json:"recent,omitempty"`
	// EventIDs is the ledger's former form (whole digests); it is read, moved into recent and cleared.
	// +kubebuilder:validation:MaxItems=256
	// +listType=atomic
	// +optional
	EventIDs []string `json:"eventIDs,omitempty"`
}

// SmartleadState is bounceguard's record of its own actions on one Smartlead email account.
type SmartleadState struct {
	// AccountID is the Smartlead email account id acted on: spec.smartleadAccountID, or resolved by email.
	// +optional
	AccountID int64 `json:"accountID,omitempty"`
	// Paused is true while bounceguard holds the account paused in Smartlead.
	// +optional
	Paused bool `json:"paused,omitempty"`
	// Reason is why it is paused: BounceThreshold (its own health) or DomainPaused (its domain's).
	// +optional
	Reason string `json:"reason,omitempty"`
	// Action is how it was paused; set as soon as a pause starts, before any call is made.
	// +optional
	Action PauseAction `json:"action,omitempty"`
	// Suspended is true while the account is suspended by bounceguard.
	// +optional
	Suspended bool `json:"suspended,omitempty"`
	// RemovedCampaignIDs are the campaigns bounceguard removes (or removed) the account from; exactly these
	// are restored on resume. Recorded before the first removal.
	// +kubebuilder:validation:MaxItems=1000
	// +listType=atomic
	// +optional
	RemovedCampaignIDs []int64 `json:"removedCampaignIDs,omitempty"`
	// RefusedCampaignIDs are campaigns Smartlead would not remove the account from (it is the last account
	// of an ACTIVE campaign); the account is suspended instead, so that it stops sending all the same.
	// +kubebuilder:validation:MaxItems=1000
	// +listType=atomic
	// +optional
	RefusedCampaignIDs []int64 `json:"refusedCampaignIDs,omitempty"`
	// OriginalDailyLimit is the account's message_per_day read before ZeroDailyLimit set it to 0; recorded
	// before that write, and restored exactly on resume.
	// +optional
	OriginalDailyLimit *int32 `json:"originalDailyLimit,omitempty"`
	// DailyLimitZeroed is true while bounceguard holds the account's daily limit at 0.
	// +optional
	DailyLimitZeroed bool `json:"dailyLimitZeroed,omitempty"`
	// SkippedCampaignIDs are campaigns that no longer existed in Smartlead (404) when bounceguard removed the
	// account from them or restored it; they were skipped and the rest of the pause or resume went on.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	SkippedCampaignIDs []int64 `json:"skippedCampaignIDs,omitempty"`
	// APIKeySecretRef is the Secret key whose API key paused the account; resuming uses the same one, even
	// when the policy has changed or is gone by then.
	// +optional
	APIKeySecretRef *SecretKeySelector `json:"apiKeySecretRef,omitempty"`
	// BaseURL is the Smartlead API the account was paused through; resuming uses the same one.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	BaseURL string `json:"baseURL,omitempty"`
	// PausedAt is when the pause took effect in Smartlead.
	// +optional
	PausedAt *metav1.Time `json:"pausedAt,omitempty"`
	// LastOperation is the last Smartlead operation attempted (Suspend, Unsuspend, RemoveFromCampaigns, ...).
	// +optional
	LastOperation string `json:"lastOperation,omitempty"`
	// LastError is the error of the last attempt, empty when it succeeded. It never holds the API key.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	LastError string `json:"lastError,omitempty"`
	// LastAttemptAt is when the last operation was attempted.
	// +optional
	LastAttemptAt *metav1.Time `json:"lastAttemptAt,omitempty"`
}

// MailboxStatus is the observed state of a Mailbox: tallies, rolling window and protection state.
type MailboxStatus struct {
	// ObservedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Health is the mailbox's own protection state.
	// +optional
	Health Health `json:"health,omitempty"`
	// HealthReason names the rule behind the current health (BounceThreshold, CooldownElapsed, CleanSends, ...).
	// +optional
	HealthReason string `json:"healthReason,omitempty"`
	// HealthMessage is the evidence for the current health, e.g. "5 bounces in the last 100 sends (pause at 5/100)".
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	HealthMessage string `json:"healthMessage,omitempty"`
	// Sent is the number of send events recorded over the mailbox's lifetime.
	// +optional
	Sent int64 `json:"sent"`
	// Bounced is the number of counted bounces over the mailbox's lifetime.
	// +optional
	Bounced int64 `json:"bounced"`
	// SoftBounced is the number of soft (temporary) bounces over the mailbox's lifetime.
	// +optional
	SoftBounced int64 `json:"softBounced"`
	// WindowSends is the number of sends in the pause window (at most pause.withinSends).
	// +optional
	WindowSends int32 `json:"windowSends"`
	// WindowBounces is the number of counted bounces within the pause window.
	// +optional
	WindowBounces int32 `json:"windowBounces"`
	// Window is WindowBounces/pause.withinSends, for display (e.g. "4/100").
	// +optional
	Window string `json:"window,omitempty"`
	// PauseCount is the number of consecutive pauses; it sets the cooldown ladder.
	// +optional
	PauseCount int32 `json:"pauseCount,omitempty"`
	// PausedAt is when the current pause began.
	// +optional
	PausedAt *metav1.Time `json:"pausedAt,omitempty"`
	// ResumeAt is when the current pause's cooldown ends.
	// +optional
	ResumeAt *metav1.Time `json:"resumeAt,omitempty"`
	// LastEventAt is when the last recorded webhook event arrived.
	// +optional
	LastEventAt *metav1.Time `json:"lastEventAt,omitempty"`
	// HealthySinceSent is the value of sent when the mailbox last turned Healthy; once it has stayed Healthy
	// for pause.withinSends sends, the cooldown ladder (pauseCount) starts again.
	// +optional
	HealthySinceSent int64 `json:"healthySinceSent,omitempty"`
	// ResumeRequest is the last value of the bounceguard.io/resume annotation that was acted on.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ResumeRequest string `json:"resumeRequest,omitempty"`
	// Smartlead records what bounceguard has done to the mailbox in Smartlead, so that a restart neither
	// repeats nor forgets a call.
	// +optional
	Smartlead SmartleadState `json:"smartlead,omitzero"`
	// Ledger is the bounded bookkeeping behind the rolling window and de-duplication.
	// +optional
	Ledger Ledger `json:"ledger,omitzero"`
	// Conditions include Ready, Warning, Paused and PauseRecommended.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Mailbox is one Smartlead sending mailbox protected by bounceguard.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mb,categories=bounceguard
// +kubebuilder:printcolumn:name="Email",type=string,JSONPath=`.spec.email`
// +kubebuilder:printcolumn:name="Health",type=string,JSONPath=`.status.health`
// +kubebuilder:printcolumn:name="Window",type=string,JSONPath=`.status.window`
// +kubebuilder:printcolumn:name="Sent",type=integer,JSONPath=`.status.sent`
// +kubebuilder:printcolumn:name="Bounced",type=integer,JSONPath=`.status.bounced`
// +kubebuilder:printcolumn:name="Paused",type=string,JSONPath=`.status.conditions[?(@.type=="Paused")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Mailbox struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec identifies the mailbox.
	Spec MailboxSpec `json:"spec"`
	// Status holds its tallies and protection state.
	// +optional
	Status MailboxStatus `json:"status,omitempty"`
}

// Domain returns the domain part of the mailbox's email, lowercased, or "" when it has none.
func (m *Mailbox) Domain() string {
	at := strings.LastIndexByte(m.Spec.Email, '@')
	if at < 0 || at == len(m.Spec.Email)-1 {
		return ""
	}
	return strings.ToLower(m.Spec.Email[at+1:])
}

// MailboxList is a list of Mailbox.
// +kubebuilder:object:root=true
type MailboxList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the mailboxes.
	Items []Mailbox `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Mailbox{}, &MailboxList{})
}
