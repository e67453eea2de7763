package v1alpha1

import (
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mode decides what bounceguard does when a threshold is reached.
// +kubebuilder:validation:Enum=Observe;Suggest;Enforce
type Mode string

const (
	// ModeObserve records status, conditions and Normal Events only; Smartlead is never called.
	ModeObserve Mode = "Observe"
	// ModeSuggest is Observe plus a PauseRecommended condition and Warning Events.
	ModeSuggest Mode = "Suggest"
	// ModeEnforce pauses and resumes mailboxes in Smartlead.
	ModeEnforce Mode = "Enforce"
)

// PauseAction is how a mailbox is paused in Smartlead.
// +kubebuilder:validation:Enum=Suspend;RemoveFromCampaigns;ZeroDailyLimit
type PauseAction string

const (
	// PauseActionSuspend suspends the email account in Smartlead.
	PauseActionSuspend PauseAction = "Suspend"
	// PauseActionRemoveFromCampaigns removes the account from its campaigns and restores exactly those on resume.
	PauseActionRemoveFromCampaigns PauseAction = "RemoveFromCampaigns"
	// PauseActionZeroDailyLimit sets the account's daily sending limit to 0 and restores exactly the value
	// it had on resume; unlike Suspend, the account keeps warming up while it cools down.
	PauseActionZeroDailyLimit PauseAction = "ZeroDailyLimit"
)

// Threshold is "bounces counted bounces within the last withinSends sends".
// +kubebuilder:validation:XValidation:rule="self.withinSends >= self.bounces",message="withinSends must be at least bounces"
type Threshold struct {
	// Bounces is the number of counted bounces that reaches the threshold (at most 20: a Mailbox remembers
	// its 20 most recent counted bounces, which keeps it small).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=20
	Bounces int32 `json:"bounces"`
	// WithinSends is the size of the rolling window: the last this-many sends.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	WithinSends int32 `json:"withinSends"`
}

// MailboxRules are the per-mailbox thresholds.
// +kubebuilder:validation:XValidation:rule="!has(self.warning) || !has(self.pause) || self.warning.bounces < self.pause.bounces && self.warning.bounces * self.pause.withinSends <= self.pause.bounces * self.warning.withinSends",message="warning must be looser than pause: fewer bounces, at a bounce rate no higher than pause's"
type MailboxRules struct {
	// Warning is the threshold at which a mailbox turns Warning.
	// +kubebuilder:default={bounces: 3, withinSends: 60}
	// +optional
	Warning Threshold `json:"warning,omitzero"`
	// Pause is the threshold at which a mailbox turns Paused.
	// +kubebuilder:default={bounces: 5, withinSends: 100}
	// +optional
	Pause Threshold `json:"pause,omitzero"`
	// CountSoftBounces counts soft (temporary) bounces toward the thresholds; by default they are only tallied.
	// +kubebuilder:default=false
	// +optional
	CountSoftBounces bool `json:"countSoftBounces"`
}

// DomainRules decide when a domain is unhealthy as a whole.
// +kubebuilder:validation:XValidation:rule="!has(self.warningPercent) || !has(self.pausePercent) || self.warningPercent <= self.pausePercent",message="warningPercent must not exceed pausePercent"
type DomainRules struct {
	// WarningPercent is the share of the domain's mailboxes that, when unhealthy, turns the domain Warning.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=30
	// +optional
	WarningPercent int32 `json:"warningPercent,omitempty"`
	// PausePercent is the share of the domain's mailboxes that, when unhealthy, pauses the whole domain.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=50
	// +optional
	PausePercent int32 `json:"pausePercent,omitempty"`
	// MinimumMailboxes is the domain size below which percentages are not used:
	// a smaller domain is Warning at 1 unhealthy mailbox and Paused at 2.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=3
	// +optional
	MinimumMailboxes int32 `json:"minimumMailboxes,omitempty"`
}

// RecoveryRules decide how a paused mailbox or domain comes back.
// +kubebuilder:validation:XValidation:rule="!has(self.cooldown) || duration(self.cooldown) > duration('0s')",message="cooldown must be positive"
// +kubebuilder:validation:XValidation:rule="!has(self.cooldown) || !has(self.maxCooldown) || duration(self.maxCooldown) >= duration(self.cooldown)",message="maxCooldown must be at least cooldown"
type RecoveryRules struct {
	// Automatic lets a paused mailbox recover once its cooldown has passed; false keeps it paused until a
	// person sets the bounceguard.io/resume annotation.
	// +kubebuilder:default=true
	// +optional
	Automatic *bool `json:"automatic,omitempty"`
	// Cooldown is how long the first pause lasts; the n-th consecutive pause lasts cooldown*2^(n-1).
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +optional
	Cooldown metav1.Duration `json:"cooldown,omitzero"`
	// MaxCooldown caps the growing cooldown.
	// +kubebuilder:default="16h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +optional
	MaxCooldown metav1.Duration `json:"maxCooldown,omitzero"`
	// CleanSends is the number of sends without a counted bounce that a Recovering mailbox needs to turn Healthy.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +kubebuilder:default=25
	// +optional
	CleanSends int32 `json:"cleanSends,omitempty"`
}

// SmartleadSettings connect the policy to one Smartlead organization.
type SmartleadSettings struct {
	// OrganizationID is the Smartlead organization whose webhooks this policy receives; it is matched
	// against the x-organization-id header of each webhook.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]+$`
	// +optional
	OrganizationID string `json:"organizationID,omitempty"`
	// APIKeySecretRef names the Secret key holding the Smartlead API key. Required in Enforce mode.
	// +optional
	APIKeySecretRef *SecretKeySelector `json:"apiKeySecretRef,omitempty"`
	// WebhookSecretRef names the Secret key holding the webhook signing secret. When set, every webhook
	// must carry a valid X-Smartlead-Signature. The value may hold several newline-separated secrets (rotation).
	// +optional
	WebhookSecretRef *SecretKeySelector `json:"webhookSecretRef,omitempty"`
	// BaseURL is the Smartlead API base URL.
	// +kubebuilder:default="https://server.smartlead.ai/api/v1"
	// +kubebuilder:validation:Pattern=`^https?://[^\s]+$`
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	BaseURL string `json:"baseURL,omitempty"`
	// PauseAction is how a mailbox is paused: Suspend the account, RemoveFromCampaigns (restored exactly on
	// resume), or ZeroDailyLimit (its daily limit set to 0 and the value read restored on resume; warm-up
	// keeps running).
	// +kubebuilder:default=Suspend
	// +optional
	PauseAction PauseAction `json:"pauseAction,omitempty"`
	// RateLimit is the request budget of the API key: Smartlead's Standard plan allows 60 requests a
	// minute with a burst of 10 (Pro: 120 a minute). Every policy using the same key shares one budget, the
	// lowest any of them states (rate and burst each). It is spent by urgency: pauses and resumes first,
	// then drift reapplies, then the account sync's reads.
	// +kubebuilder:default={}
	// +optional
	RateLimit SmartleadRateLimit `json:"rateLimit,omitzero"`
	// Sync reads the organization's email accounts with the API key, periodically and at start: it
	// creates Mailboxes, records what Smartlead shows of each, and finds drift and unmonitored mailboxes.
	// +kubebuilder:default={}
	// +optional
	Sync SyncSettings `json:"sync,omitzero"`
}

// SmartleadRateLimit is the request budget of a Smartlead API key.
// +kubebuilder:validation:XValidation:rule="!has(self.burst) || !has(self.requestsPerMinute) || self.burst <= self.requestsPerMinute",message="burst must not exceed requestsPerMinute"
type SmartleadRateLimit struct {
	// RequestsPerMinute is the sustained rate of requests the key may make.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=6000
	// +kubebuilder:default=60
	// +optional
	RequestsPerMinute int32 `json:"requestsPerMinute,omitempty"`
	// Burst is how many requests may go at once, after a quiet spell.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=10
	// +optional
	Burst int32 `json:"burst,omitempty"`
}

// DriftAction is what the account sync does about a paused mailbox that Smartlead shows sending again.
// +kubebuilder:validation:Enum=Report;Reapply
type DriftAction string

const (
	// DriftReport reports the drift (condition Drifted, Warning Event, notification) and leaves it to a person.
	DriftReport DriftAction = "Report"
	// DriftReapply also pauses the account again, once per pause episode; a second drift is reported only.
	DriftReapply DriftAction = "Reapply"
)

// SyncSettings say how often the policy's Smartlead accounts are read, whether a Mailbox is created for each,
// and what is done when a paused account is found sending again.
// +kubebuilder:validation:XValidation:rule="!has(self.interval) || duration(self.interval) == duration('0s') || duration(self.interval) >= duration('1m')",message="interval must be 0s (off) or at least 1m"
type SyncSettings struct {
	// Interval is how often the accounts are read (and once at start); "0s" turns the sync off.
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`
	// CreateMailboxes creates a Mailbox (labelled app.kubernetes.io/managed-by: bounceguard, governed by this
	// policy) for every account of the organization that has none in the namespace. A Mailbox is never deleted.
	// +kubebuilder:default=true
	// +optional
	CreateMailboxes *bool `json:"createMailboxes,omitempty"`
	// Drift is what happens when someone resumes, in Smartlead, a mailbox bounceguard holds paused.
	// +kubebuilder:default=Report
	// +optional
	Drift DriftAction `json:"drift,omitempty"`
}

// GateSettings authorise callers of the execution gate.
type GateSettings struct {
	// TokenSecretRef names the Secret key holding the bearer token(s) that may ask the gate about this
	// policy's mailboxes; several newline-separated tokens allow a rotation. Without it the gate answers
	// nobody about this policy's mailboxes.
	// +optional
	TokenSecretRef *SecretKeySelector `json:"tokenSecretRef,omitempty"`
}

// SafetyRules stop bounceguard from pausing too much of a fleet at once.
type SafetyRules struct {
	// MaxPausedPercent is the largest share of the policy's mailboxes that may be paused at once; beyond it
	// bounceguard stops pausing and waits for a person.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	// +kubebuilder:default=50
	// +optional
	MaxPausedPercent int32 `json:"maxPausedPercent,omitempty"`
	// MinimumMailboxes is the fleet size from which MaxPausedPercent applies; smaller fleets have no limit.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=10
	// +optional
	MinimumMailboxes int32 `json:"minimumMailboxes,omitempty"`
}

// ProtectionPolicySpec is the desired protection of the mailboxes that reference the policy.
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Enforce' || (has(self.smartlead) && has(self.smartlead.apiKeySecretRef))",message="Enforce mode needs smartlead.apiKeySecretRef"
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Enforce' || (has(self.smartlead) && has(self.smartlead.webhookSecretRef))",message="Enforce mode needs smartlead.webhookSecretRef: an unauthenticated webhook must never pause a mailbox"
type ProtectionPolicySpec struct {
	// Mode is what bounceguard does at a threshold: Observe (record only), Suggest (record and recommend)
	// or Enforce (pause and resume in Smartlead).
	// +kubebuilder:default=Observe
	// +optional
	Mode Mode `json:"mode,omitempty"`
	// Mailbox holds the per-mailbox thresholds.
	// +kubebuilder:default={}
	// +optional
	Mailbox MailboxRules `json:"mailbox,omitzero"`
	// Domain holds the rules for a domain as a whole.
	// +kubebuilder:default={}
	// +optional
	Domain DomainRules `json:"domain,omitzero"`
	// Recovery holds the cooldown and recovery rules.
	// +kubebuilder:default={}
	// +optional
	Recovery RecoveryRules `json:"recovery,omitzero"`
	// Smartlead connects the policy to a Smartlead organization.
	// +kubebuilder:default={}
	// +optional
	Smartlead SmartleadSettings `json:"smartlead,omitzero"`
	// AutoDiscover creates a Mailbox for a webhook sender that has none; when false such webhooks are refused.
	// +kubebuilder:default=true
	// +optional
	AutoDiscover *bool `json:"autoDiscover,omitempty"`
	// Gate authorises callers of the execution gate (GET /v1/gate).
	// +optional
	Gate GateSettings `json:"gate,omitzero"`
	// Safety limits how much of the fleet may be paused at once.
	// +kubebuilder:default={}
	// +optional
	Safety SafetyRules `json:"safety,omitzero"`
	// Notifications are where transitions are announced (Slack or a JSON webhook), besides Kubernetes Events.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	Notifications []NotificationTarget `json:"notifications,omitempty"`
}

// NotificationType is where a notification is sent.
// +kubebuilder:validation:Enum=Slack;Webhook
type NotificationType string

const (
	// NotificationSlack posts to a Slack incoming webhook (a message with blocks).
	NotificationSlack NotificationType = "Slack"
	// NotificationWebhook posts a JSON document to any URL.
	NotificationWebhook NotificationType = "Webhook"
)

// NotificationEvent is a kind of transition that can be announced.
// +kubebuilder:validation:Enum=Warning;PauseRecommended;Paused;Resumed;DomainPaused;SafetyHold;Drift;Unmonitored;SmartleadError
type NotificationEvent string

const (
	// NotifyWarning announces a mailbox that turned Warning.
	NotifyWarning NotificationEvent = "Warning"
	// NotifyPauseRecommended announces a mailbox that crossed its pause threshold in Observe or Suggest.
	NotifyPauseRecommended NotificationEvent = "PauseRecommended"
	// NotifyPaused announces a mailbox paused in Smartlead (Enforce).
	NotifyPaused NotificationEvent = "Paused"
	// NotifyResumed announces a mailbox resumed in Smartlead (Enforce).
	NotifyResumed NotificationEvent = "Resumed"
	// NotifyDomainPaused announces a domain that turned Paused (half its mailboxes unhealthy, by default).
	NotifyDomainPaused NotificationEvent = "DomainPaused"
	// NotifySafetyHold announces a pause the safety limit held back.
	NotifySafetyHold NotificationEvent = "SafetyHold"
	// NotifyDrift announces that Smartlead shows a mailbox bounceguard holds paused sending again.
	NotifyDrift NotificationEvent = "Drift"
	// NotifyUnmonitored announces that Smartlead shows a mailbox sending far more than bounceguard receives.
	NotifyUnmonitored NotificationEvent = "Unmonitored"
	// NotifySmartleadError announces that a Smartlead call of a pause or resume failed.
	NotifySmartleadError NotificationEvent = "SmartleadError"
)

// Notice is one transition to announce: an element of the "notices" list of the JSON document a Webhook
// notification target receives. It names the sending mailbox (never a lead) and carries the evidence, e.g.
// "5 bounces in the last 100 sends (pause at 5/100)".
// +kubebuilder:object:generate=false
type Notice struct {
	// Event is the kind of transition.
	Event NotificationEvent `json:"event"`
	// Mailbox is the address of the mailbox concerned, if one is.
	Mailbox string `json:"mailbox,omitempty"`
	// Domain is the domain concerned, if one is.
	Domain string `json:"domain,omitempty"`
	// Evidence says why, in words.
	Evidence string `json:"evidence"`
	// At is when the transition happened.
	At time.Time `json:"at"`
}

// NotificationTarget is one place transitions are announced.
type NotificationTarget struct {
	// Type is Slack (an incoming webhook) or Webhook (a JSON POST).
	Type NotificationType `json:"type"`
	// URLSecretRef is the Secret key holding the URL; it is never logged or shown.
	URLSecretRef SecretKeySelector `json:"urlSecretRef"`
	// Events are the kinds announced here; default: all.
	// +kubebuilder:validation:MaxItems=9
	// +listType=set
	// +optional
	Events []NotificationEvent `json:"events,omitempty"`
}

// Wants reports whether the target announces events of kind e.
func (t *NotificationTarget) Wants(e NotificationEvent) bool {
	return len(t.Events) == 0 || slices.Contains(t.Events, e)
}

// NotificationStatus is how delivery to one notification target is going.
type NotificationStatus struct {
	// Index is the target's position in spec.notifications.
	Index int32 `json:"index"`
	// Type is the target's type.
	Type NotificationType `json:"type"`
	// Delivered is the number of messages delivered since the manager started.
	// +optional
	Delivered int64 `json:"delivered"`
	// Failed is the number of messages given up on (after retries) or dropped since the manager started.
	// +optional
	Failed int64 `json:"failed"`
	// LastError is why the last failed attempt failed; it never holds the URL.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	LastError string `json:"lastError,omitempty"`
	// LastFailureTime is when a message was last given up on.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`
	// LastDeliveryTime is when a message was last delivered.
	// +optional
	LastDeliveryTime *metav1.Time `json:"lastDeliveryTime,omitempty"`
}

// ProtectionPolicyStatus is the observed state of a ProtectionPolicy.
type ProtectionPolicyStatus struct {
	// ObservedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Mailboxes is the number of mailboxes governed by the policy.
	// +optional
	Mailboxes int32 `json:"mailboxes"`
	// Healthy is the number of governed mailboxes whose health is Healthy.
	// +optional
	Healthy int32 `json:"healthy"`
	// Warning is the number of governed mailboxes whose health is Warning.
	// +optional
	Warning int32 `json:"warning"`
	// Paused is the number of governed mailboxes whose health is Paused (in any mode).
	// +optional
	Paused int32 `json:"paused"`
	// Recovering is the number of governed mailboxes whose health is Recovering.
	// +optional
	Recovering int32 `json:"recovering"`
	// PausedMailboxes is the number of governed mailboxes that are paused in Smartlead (condition Paused=True).
	// +optional
	PausedMailboxes int32 `json:"pausedMailboxes"`
	// LastSyncTime is when the account sync last read the organization's accounts completely.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// Accounts is the number of Smartlead accounts the last complete sync read.
	// +optional
	Accounts int32 `json:"accounts,omitempty"`
	// SyncRequest is the last value of the bounceguard.io/sync annotation that was acted on.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SyncRequest string `json:"syncRequest,omitempty"`
	// LastSyncError is why the last sync failed; empty after a complete one. It never holds the API key.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	LastSyncError string `json:"lastSyncError,omitempty"`
	// Notifications report delivery to each of spec.notifications.
	// +kubebuilder:validation:MaxItems=10
	// +listType=atomic
	// +optional
	Notifications []NotificationStatus `json:"notifications,omitempty"`
	// Conditions include Ready (False with a reason when a referenced Secret or key is missing).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ProtectionPolicy says how the mailboxes of a namespace are protected from bounce damage.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=pp;ppol,categories=bounceguard
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Mailboxes",type=integer,JSONPath=`.status.mailboxes`
// +kubebuilder:printcolumn:name="Paused",type=integer,JSONPath=`.status.pausedMailboxes`,description="Mailboxes paused in Smartlead"
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ProtectionPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired protection.
	// +kubebuilder:default={}
	// +optional
	Spec ProtectionPolicySpec `json:"spec,omitzero"`
	// Status is the observed state.
	// +optional
	Status ProtectionPolicyStatus `json:"status,omitempty"`
}

// ProtectionPolicyList is a list of ProtectionPolicy.
// +kubebuilder:object:root=true
type ProtectionPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the policies.
	Items []ProtectionPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ProtectionPolicy{}, &ProtectionPolicyList{})
}

// PolicySecretRef is a Secret key a policy references, and what it holds (for messages).
// +kubebuilder:object:generate=false
type PolicySecretRef struct {
	// What says what the key holds, e.g. "Smartlead API key".
	What string
	// Selector is the Secret key.
	Selector *SecretKeySelector
}

// SecretRefs lists the Secret keys the policy references: its Smartlead API key and webhook secret, its
// gate token and its notification URLs, where set.
func (p *ProtectionPolicy) SecretRefs() []PolicySecretRef {
	var refs []PolicySecretRef
	for _, r := range []PolicySecretRef{{"Smartlead API key", p.Spec.Smartlead.APIKeySecretRef},
		{"Smartlead webhook secret", p.Spec.Smartlead.WebhookSecretRef}, {"gate token", p.Spec.Gate.TokenSecretRef}} {
		if r.Selector != nil {
			refs = append(refs, r)
		}
	}
	for i := range p.Spec.Notifications {
		refs = append(refs, PolicySecretRef{fmt.Sprintf("notification URL (notifications[%d])", i), &p.Spec.Notifications[i].URLSecretRef})
	}
	return refs
}

// SecretNames lists the distinct Secrets the policy references.
func (p *ProtectionPolicy) SecretNames() []string {
	var names []string
	for _, ref := range p.SecretRefs() {
		if !slices.Contains(names, ref.Selector.Name) {
			names = append(names, ref.Selector.Name)
		}
	}
	return names
}
