package v1alpha1

// This file holds every string bounceguard shows users and their tools: condition types and reasons,
// Kubernetes Event reasons, annotations, labels and the finalizer. Alerts, dashboards, runbooks and the
// kubectl plugin match on them: they are part of the API and change only with it.

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

// Reasons of a health transition of a Mailbox or a Domain: the reason of its status.healthReason, of its
// Warning, Paused and PauseRecommended conditions, and of the Event announcing the transition.
const (
	// ReasonBounceThreshold: the pause threshold was reached (bounces within the last sends).
	ReasonBounceThreshold = "BounceThreshold"
	// ReasonWarningThreshold: the warning threshold was reached.
	ReasonWarningThreshold = "WarningThreshold"
	// ReasonBelowWarning: the bounces fell below the warning threshold again.
	ReasonBelowWarning = "BelowWarning"
	// ReasonCooldownElapsed: a pause's cooldown has passed; the mailbox or domain is Recovering.
	ReasonCooldownElapsed = "CooldownElapsed"
	// ReasonManualResume: a person resumed the mailbox or domain (annotation bounceguard.io/resume).
	ReasonManualResume = "ManualResume"
	// ReasonCleanSends: a recovering mailbox or domain sent its probation sends cleanly and is Healthy.
	ReasonCleanSends = "CleanSends"
	// ReasonRelapse: a recovering mailbox or domain bounced again and is paused again.
	ReasonRelapse = "Relapse"
	// ReasonDomainPaused: the mailbox is paused because its Domain is.
	ReasonDomainPaused = "DomainPaused"
	// ReasonDomainThreshold: too large a share of the domain's mailboxes is unhealthy; the Domain is paused.
	ReasonDomainThreshold = "UnhealthyMailboxes"
	// ReasonDomainRecovered: the share of unhealthy mailboxes fell below the domain threshold again.
	ReasonDomainRecovered = "MailboxesRecovered"
	// ReasonHold is the reason of a mailbox a person holds paused (annotation bounceguard.io/hold).
	ReasonHold = "Hold"
	// ReasonHoldReleased is the reason of a held mailbox whose hold annotation was removed.
	ReasonHoldReleased = "HoldReleased"
	// ReasonSafetyLimit is the Paused condition's reason (and the policy's PausingAllowed reason) when the
	// policy's safety limit held a pause back.
	ReasonSafetyLimit = "SafetyLimit"
	// ReasonWithinLimit is the policy's PausingAllowed reason while the safety limit holds nothing back.
	ReasonWithinLimit = "WithinLimit"
)

// Reasons of the Mailbox and Domain Ready, Warning, Paused and PauseRecommended conditions besides the
// transition reasons.
const (
	// ReasonPolicyNotFound: the ProtectionPolicy the object names does not exist (Ready False).
	ReasonPolicyNotFound = "PolicyNotFound"
	// ReasonSmartleadUnavailable: the policy's Smartlead API key cannot be read, so nothing can be paused.
	ReasonSmartleadUnavailable = "SmartleadUnavailable"
	// ReasonSmartleadError: the last Smartlead call of a pause or resume failed; it is retried.
	ReasonSmartleadError = "SmartleadError"
	// ReasonNotEnforced: the policy is in Observe or Suggest mode: bounceguard does not pause in Smartlead.
	ReasonNotEnforced = "NotEnforced"
	// ReasonSending: sending is not paused.
	ReasonSending = "Sending"
	// ReasonNotWarning: the health is not Warning (Warning False).
	ReasonNotWarning = "NotWarning"
	// ReasonNotRecommended: Enforce would not pause (PauseRecommended False).
	ReasonNotRecommended = "NotRecommended"
	// ReasonHealthy: the bounces are below every threshold.
	ReasonHealthy = "Healthy"
	// ReasonNotPausedInSmartlead: the domain is paused but none of its mailboxes is paused in Smartlead.
	ReasonNotPausedInSmartlead = "NotPausedInSmartlead"
	// ReasonDuplicateAddress: another Mailbox with the same address, under a policy that receives the
	// same webhooks, is the one bounceguard counts (Ready False).
	ReasonDuplicateAddress = "DuplicateAddress"
	// ReasonPausing: the pause is on its way to Smartlead (queued or under way).
	ReasonPausing = "Pausing"
	// ReasonWebhookSecretRequired: an Enforce policy without smartlead.webhookSecretRef: unsigned webhooks
	// must not pause anything (Ready False).
	ReasonWebhookSecretRequired = "WebhookSecretRequired"
	// ReasonAccountGone: Smartlead no longer knows the mailbox's account (404): there is nothing to pause.
	ReasonAccountGone = "AccountGone"
)

// Reasons of the ProtectionPolicy Ready condition (besides ReasonWebhookSecretRequired).
const (
	// ReasonReady: every Secret the policy references is present with its key.
	ReasonReady = "Ready"
	// ReasonSecretNotFound: a Secret the policy references does not exist.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretKeyMissing: a Secret the policy references lacks the key it names, or the key is empty.
	ReasonSecretKeyMissing = "SecretKeyMissing"
)

// Reasons of the conditions that the account sync's findings set (AccountFound, Drifted, Unmonitored).
const (
	// ReasonAccountFound: the last sync found the mailbox's account.
	ReasonAccountFound = "AccountFound"
	// ReasonAccountMissing: the last sync found no account with the mailbox's id or address.
	ReasonAccountMissing = "AccountMissing"
	// ReasonSendingAgain: Smartlead shows a mailbox bounceguard holds paused sending again; reported only.
	ReasonSendingAgain = "SendingAgain"
	// ReasonReapplied: as ReasonSendingAgain, and bounceguard paused it again (once per pause).
	ReasonReapplied = "Reapplied"
	// ReasonInStep: Smartlead shows the paused mailbox paused.
	ReasonInStep = "InStep"
	// ReasonCoverageGap: Smartlead counts clearly more sends than bounceguard received.
	ReasonCoverageGap = "CoverageGap"
	// ReasonCovered: bounceguard receives the mailbox's sends.
	ReasonCovered = "Covered"
)

// Kubernetes Event reasons of Smartlead actions, on the Mailbox.
const (
	// EventPausedInSmartlead: bounceguard paused the mailbox's account in Smartlead.
	EventPausedInSmartlead = "PausedInSmartlead"
	// EventResumedInSmartlead: bounceguard restored the mailbox's account in Smartlead.
	EventResumedInSmartlead = "ResumedInSmartlead"
	// EventSmartleadFailed: a Smartlead call failed; it is retried.
	EventSmartleadFailed = "SmartleadCallFailed"
	// EventPauseHeld: the policy's safety limit held a pause back.
	EventPauseHeld = "PauseHeldBySafetyLimit"
	// EventCampaignGone: a campaign no longer exists in Smartlead (404): skipped, the rest of the step went on.
	EventCampaignGone = "CampaignGone"
	// EventCampaignRefused: Smartlead refused a campaign step for good (4xx): skipped, the rest went on.
	EventCampaignRefused = "CampaignRefused"
	// EventCampaignRemoveFailed: removing the account from a campaign failed.
	EventCampaignRemoveFailed = "CampaignRemovalFailed"
	// EventDailyLimitRefused: Smartlead refused to restore the account's daily limit for good.
	EventDailyLimitRefused = "DailyLimitRestoreRefused"
	// EventPauseStepFailed: a step of a pause (listing campaigns, reading or zeroing the daily limit) failed.
	EventPauseStepFailed = "PauseStepFailed"
	// EventAccountGone: Smartlead no longer knows the account (404): nothing is left to pause or restore.
	EventAccountGone = "AccountGone"
)

// Kubernetes Event reasons of the account sync: on the ProtectionPolicy (EventSynced, EventSyncFailed,
// EventMailboxCreated) and on the Mailbox (what the sync found).
const (
	// EventSynced: an account sync finished.
	EventSynced = "AccountsSynced"
	// EventSyncFailed: an account sync failed; it is retried.
	EventSyncFailed = "AccountSyncFailed"
	// EventMailboxCreated: the account sync created a Mailbox for an account (spec.smartlead.createMailboxes).
	EventMailboxCreated = "MailboxCreated"
	// EventAccountMissing: the sync found no Smartlead account for the mailbox.
	EventAccountMissing = "AccountNotFound"
	// EventDrifted: Smartlead shows a mailbox bounceguard holds paused sending again.
	EventDrifted = "Drifted"
	// EventUnmonitored: Smartlead counts clearly more sends than bounceguard received webhooks for.
	EventUnmonitored = "Unmonitored"
	// EventReapplied: bounceguard paused a drifted mailbox again.
	EventReapplied = "PauseReapplied"
)

// FinalizerSmartlead is on a Mailbox while bounceguard holds it paused in Smartlead, so that deleting the
// Mailbox first resumes the account instead of leaving it paused with nobody keeping track.
const FinalizerSmartlead = "bounceguard.io/smartlead-pause"

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
