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
	// Seen holds the 200 most recent 32-bit digests of recorded events' ids (five base-85 characters each,
	// oldest first), used to drop duplicates: an event is known by its payload fingerprint and, when its
	// request carried one, its X-Request-Id — 200 events without request ids (2 hours at 100 an hour), 100 with.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Seen string `json:"seen,omitempty"`
	// Recent is a former form of seen (40-bit digests in base64); it is read, moved into seen and cleared.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Recent string `json:"recent,omitempty"`
	// SendDay is the day (UTC, days since 1970-01-01) of the last send recorded; SendsToday and
	// SendsYesterday count the sends recorded on that day and the day before. The account sync compares
	// them with Smartlead's daily_sent_count (coverage).
	// +optional
	SendDay int32 `json:"sendDay,omitempty"`
	// SendsToday is the number of sends recorded on SendDay.
	// +optional
	SendsToday int32 `json:"sendsToday,omitempty"`
	// SendsYesterday is the number of sends recorded on the day before SendDay.
	// +optional
	SendsYesterday int32 `json:"sendsYesterday,omitempty"`
	// EventIDs is the ledger's oldest form (whole ids); it is read, moved into seen and cleared.
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
	// SuspendRequested is true from just before bounceguard first asks Smartlead to suspend the account
	// (recorded before the call) until a resume has unsuspended it: a suspend that took effect but whose
	// answer was lost is undone all the same.
	// +optional
	SuspendRequested bool `json:"suspendRequested,omitempty"`
	// AccountGone is true when Smartlead no longer has the account (it answered 404 for the account
	// itself: deleted in Smartlead): the pause record ended, as nothing was left to undo, and no call is
	// made for the mailbox until a new pause begins or the spec or an account sync names another account.
	// +optional
	AccountGone bool `json:"accountGone,omitempty"`
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
	// SkippedCampaignIDs are campaigns that no longer existed in Smartlead (404), or that refused for good
	// (another 4xx but 429, e.g. an archived campaign), when bounceguard removed the account from them or
	// restored it to them; they were skipped, and the rest of the pause or resume went on. A person looks
	// at these: the account may belong in them again.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	SkippedCampaignIDs []int64 `json:"skippedCampaignIDs,omitempty"`
	// APIKeySecretRef is the Secret key whose API key paused the account; resuming uses the same one, even
	// when the policy has changed or is gone by then.
	// +optional
	APIKeySecretRef *SecretKeySelector `json:"apiKeySecretRef,omitempty"`
	// BaseURL is the Smartlead API the account was paused through (empty: Smartlead's own); resuming uses
	// the same one.
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
	// Reapplied is true once this pause was applied again after Smartlead showed the account sending
	// (spec.smartlead.sync.drift Reapply): a pause is reapplied once per episode.
	// +optional
	Reapplied bool `json:"reapplied,omitempty"`
}

// AccountState is what the last account sync read of the mailbox's Smartlead account. It is written by
// the sync alone, only when it changes, and never overwrites status.smartlead.
type AccountState struct {
	// ID is the Smartlead email account id.
	// +optional
	ID int64 `json:"id,omitempty"`
	// Missing is true when the last sync found no account for the mailbox (condition AccountFound=False).
	// +optional
	Missing bool `json:"missing,omitempty"`
	// Suspended is Smartlead's is_suspended.
	// +optional
	Suspended bool `json:"suspended,omitempty"`
	// DailyLimit is Smartlead's message_per_day.
	// +optional
	DailyLimit int32 `json:"dailyLimit,omitempty"`
	// WarmupEnabled is true while the account's warm-up is ACTIVE.
	// +optional
	WarmupEnabled bool `json:"warmupEnabled,omitempty"`
	// SMTPOK is Smartlead's is_smtp_success.
	// +optional
	SMTPOK bool `json:"smtpOK,omitempty"`
	// IMAPOK is Smartlead's is_imap_success.
	// +optional
	IMAPOK bool `json:"imapOK,omitempty"`
	// PausedAt is, while bounceguard holds the account paused, the start of that pause
	// (status.smartlead.pausedAt) as the sync saw it before reading the account: drift is judged only of
	// an account read after the pause took effect.
	// +optional
	PausedAt *metav1.Time `json:"pausedAt,omitempty"`
	// BackInCampaigns is, while bounceguard holds the account removed from campaigns, how many of those
	// campaigns Smartlead shows it in again.
	// +optional
	BackInCampaigns int32 `json:"backInCampaigns,omitempty"`
	// Gap is set while the mailbox is unmonitored (condition Unmonitored=True): Smartlead counted clearly more
	// sends today than bounceguard received. It holds the counts of the sync that found it.
	// +optional
	Gap *CoverageGap `json:"gap,omitempty"`
}

// CoverageGap is a mailbox's sends as Smartlead counts them against those bounceguard received.
type CoverageGap struct {
	// SentToday is Smartlead's daily_sent_count.
	SentToday int32 `json:"sentToday"`
	// Received is the sends bounceguard received since the start of yesterday (UTC): at least a
	// Smartlead day in any time zone.
	Received int32 `json:"received"`
}

// HealthTransition is one change of a mailbox's health and why.
type HealthTransition struct {
	// Time is when the transition was decided.
	Time metav1.Time `json:"time"`
	// From is the health before.
	From Health `json:"from"`
	// To is the health after.
	To Health `json:"to"`
	// Reason names the rule that fired (BounceThreshold, CooldownElapsed, CleanSends, Hold, ...).
	// +kubebuilder:validation:MaxLength=64
	Reason string `json:"reason"`
	// Evidence is what the rule saw, e.g. "5 bounces in the last 100 sends (pause at 5/100)".
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Evidence string `json:"evidence,omitempty"`
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
	// HealthMessage is the evidence of the current health as statuses written before status.history held it;
	// it is cleared at the next transition. Deprecated: the evidence is the last history entry's.
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
	// Account is what the last account sync read of the mailbox's Smartlead account.
	// +optional
	Account *AccountState `json:"account,omitempty"`
	// History holds the last 5 health transitions with their evidence, oldest first: the why of a pause
	// outlives Kubernetes Events.
	// +kubebuilder:validation:MaxItems=5
	// +listType=atomic
	// +optional
	History []HealthTransition `json:"history,omitempty"`
	// Ledger is the bounded bookkeeping behind the rolling window and de-duplication.
	// +optional
	Ledger Ledger `json:"ledger,omitzero"`
	// Conditions include Ready, Warning, Paused, PauseRecommended and, once the account sync has found
	// something, AccountFound, Drifted and Unmonitored.
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

// Evidence is the evidence of the mailbox's current health, e.g. "5 bounces in the last 100 sends (pause at
// 5/100)": its last transition's, or healthMessage for a status written before status.history.
func (st *MailboxStatus) Evidence() string {
	if n := len(st.History); n > 0 {
		return st.History[n-1].Evidence
	}
	return st.HealthMessage
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
