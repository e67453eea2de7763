// Package controllers holds bounceguard's reconcilers and wires them, with the webhook receiver,
// into a controller-runtime manager.
package controllers

import (
	"flag"
	"fmt"
	"time"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/bounceguard/bounceguard/smartlead"
	"github.com/bounceguard/bounceguard/webhookreceiver"
)

// Options are the manager settings that bounceguard adds to controller-runtime's.
type Options struct {
	// ReceiverBindAddress is where the webhook receiver and the execution gate listen.
	ReceiverBindAddress string
	// ReceiverMaxBody is the largest webhook body accepted, in bytes.
	ReceiverMaxBody int64
	// ReceiverBatchWindow is how long the receiver waits to group events into one status write; 0 disables batching.
	ReceiverBatchWindow time.Duration
	// MailboxConcurrency is how many mailboxes are reconciled (and called in Smartlead) at once.
	MailboxConcurrency int
	// Smartlead returns the Smartlead client of a policy; default: built from the policy's API key Secret.
	Smartlead SmartleadProvider
	// SmartleadOptions tune the default provider's clients (retries, backoff, timeout).
	SmartleadOptions smartlead.Options
	// Clock is the reconcilers' time source; default: the real clock.
	Clock clock.PassiveClock
}

// BindFlags registers the options as command-line flags with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.ReceiverBindAddress, "receiver-bind-address", ":8082",
		"Address the Smartlead webhook receiver and the execution gate listen on (0 disables them).")
	fs.Int64Var(&o.ReceiverMaxBody, "receiver-max-body", 1<<20, "Largest webhook body accepted, in bytes; larger ones get 413.")
	fs.DurationVar(&o.ReceiverBatchWindow, "receiver-batch-window", 2*time.Millisecond,
		"How long the receiver gathers events for one mailbox into one status write; 0 writes each event alone.")
	fs.IntVar(&o.MailboxConcurrency, "mailbox-concurrency", 4, "Mailboxes reconciled at once (Smartlead calls of different mailboxes run in parallel).")
}

// Setup registers bounceguard's field indexes and reconcilers with the manager.
func Setup(mgr ctrl.Manager, opts Options) error {
	if err := RegisterIndexes(mgr); err != nil {
		return fmt.Errorf("registering field indexes: %w", err)
	}
	if err := (&ProtectionPolicyReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("bounceguard")}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the ProtectionPolicy controller: %w", err)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Smartlead == nil {
		opts.Smartlead = &SecretSmartleadProvider{Reader: mgr.GetClient(), Limiters: &smartlead.Limiters{}, Options: opts.SmartleadOptions}
	}
	mailboxes := &MailboxReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("bounceguard"),
		Clock: opts.Clock, Smartlead: opts.Smartlead}
	if err := mailboxes.SetupWithManager(mgr, opts.MailboxConcurrency); err != nil {
		return fmt.Errorf("setting up the Mailbox controller: %w", err)
	}
	if err := (&DomainReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("bounceguard"), Clock: opts.Clock}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Domain controller: %w", err)
	}
	if opts.ReceiverBindAddress == "" || opts.ReceiverBindAddress == "0" {
		return nil
	}
	receiver := &webhookreceiver.Server{
		Addr:             opts.ReceiverBindAddress,
		MaxBody:          opts.ReceiverMaxBody,
		Client:           mgr.GetClient(),
		Committer:        webhookreceiver.NewCommitter(mgr.GetClient(), mgr.GetAPIReader(), opts.ReceiverBatchWindow),
		WaitForCacheSync: mgr.GetCache().WaitForCacheSync,
		Log:              mgr.GetLogger().WithName("receiver"),
	}
	if err := mgr.Add(receiver); err != nil {
		return fmt.Errorf("adding the webhook receiver: %w", err)
	}
	if err := mgr.AddReadyzCheck("receiver", receiver.ReadyCheck); err != nil {
		return fmt.Errorf("adding the receiver's readiness check: %w", err)
	}
	return nil
}
