// Package manager wires the bounceguard process into a controller-runtime manager: its flags and cache
// settings, the field indexes, the Secret store, the notifier, the Smartlead queues, the reconcilers and
// the webhook receiver. The command, the development and load tools and the test suites all set a
// manager up through Setup.
package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/controllers"
	"github.com/bounceguard/bounceguard/internal/index"
	"github.com/bounceguard/bounceguard/internal/notify"
	"github.com/bounceguard/bounceguard/internal/secretstore"
	"github.com/bounceguard/bounceguard/internal/smartlead"
	"github.com/bounceguard/bounceguard/internal/tally"
	"github.com/bounceguard/bounceguard/webhookreceiver"
)

// DefaultLeaderElectionID is the leader-election lease of an unsharded manager.
const DefaultLeaderElectionID = "bounceguard.bounceguard.io"

// The Dispatcher is the reconcilers' Notifier.
var _ controllers.Notifier = (*notify.Dispatcher)(nil)

// Options are the manager settings that bounceguard adds to controller-runtime's.
type Options struct {
	// ReceiverBindAddress is where the webhook receiver and the execution gate listen.
	ReceiverBindAddress string
	// ReceiverMaxBody is the largest webhook body accepted, in bytes.
	ReceiverMaxBody int64
	// ReceiverMaxBuffer bounds the bytes of webhook bodies buffered at once across all requests (503 with
	// Retry-After beyond it); 0: no bound.
	ReceiverMaxBuffer int64
	// ReceiverMaxInFlight bounds the receiver's concurrent requests (503 with Retry-After above it).
	ReceiverMaxInFlight int
	// ReceiverMaxEventAge refuses events whose own timestamp is older (200 "stale"); at most the
	// de-duplication horizon (2h), 0 disables the check.
	ReceiverMaxEventAge time.Duration
	// ReceiverBatchWindow is how long the receiver waits to group events into one status write; 0 disables batching.
	ReceiverBatchWindow time.Duration
	// MailboxConcurrency is how many mailboxes are reconciled at once (Smartlead calls run on their own queues).
	MailboxConcurrency int
	// NotifyWindow is how long a notification target gathers a burst into one message; 0: notify.DefaultWindow.
	NotifyWindow time.Duration
	// NotifyBackoff is the first wait before a failed notification is retried; 0: notify.DefaultBackoff.
	NotifyBackoff time.Duration
	// LogEvents has the receiver log one line per recorded event (the input of kubectl bounceguard whatif).
	LogEvents bool
	// ConditionWriteQPS paces the Mailbox status writes that change only conditions (e.g. a policy's mode
	// change reaching every mailbox), so that the writes deciding something keep the API server's room; 0: unpaced.
	ConditionWriteQPS float64
	// Smartlead returns the Smartlead client of a policy; default: built from the policy's API key Secret.
	Smartlead controllers.SmartleadProvider
	// SmartleadOptions tune the default provider's clients (retries, backoff, timeout).
	SmartleadOptions smartlead.Options
	// Clock is the reconcilers' time source; default: the real clock.
	Clock clock.PassiveClock
	// WatchLabelSelector shards by namespace label: the manager handles only the namespaces that match
	// (their policies, mailboxes, domains, webhooks and gate questions); "" is every namespace.
	WatchLabelSelector string
}

// BindFlags registers the options as command-line flags with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.ReceiverBindAddress, "receiver-bind-address", ":8082",
		"Address the Smartlead webhook receiver and the execution gate listen on (0 disables them).")
	fs.Int64Var(&o.ReceiverMaxBody, "receiver-max-body", 1<<20, "Largest webhook body accepted, in bytes; larger ones get 413.")
	fs.Int64Var(&o.ReceiverMaxBuffer, "receiver-max-buffer", 64<<20,
		"Bytes of webhook bodies the receiver buffers at once across all requests; a body beyond it is answered 503 "+
			"with Retry-After (0: no bound). At least twice --receiver-max-body.")
	fs.IntVar(&o.ReceiverMaxInFlight, "receiver-max-in-flight", 512,
		"Requests the receiver serves at once (webhooks and gate); above it the answer is 503 with Retry-After (0: no bound).")
	fs.DurationVar(&o.ReceiverMaxEventAge, "receiver-max-event-age", webhookreceiver.DedupHorizon,
		"Events whose own timestamp is older are answered 200 {\"status\":\"stale\"} and not recorded (at most 2h, the de-duplication horizon; 0 disables).")
	fs.DurationVar(&o.ReceiverBatchWindow, "receiver-batch-window", 2*time.Millisecond,
		"How long the receiver gathers events for one mailbox into one status write; 0 writes each event alone.")
	fs.StringVar(&o.WatchLabelSelector, "watch-label-selector", "",
		"Shard by namespace label (e.g. bounceguard.io/shard=a): this manager handles only the matching namespaces' "+
			"policies, mailboxes, domains, webhooks and gate questions, and elects its leader on its own lease. Empty: every namespace.")
	fs.IntVar(&o.MailboxConcurrency, "mailbox-concurrency", 4, "Mailboxes reconciled at once (Smartlead calls run apart, on one queue per API key).")
	fs.BoolVar(&o.LogEvents, "log-events", false,
		"Log one structured line per recorded event (sender, type, time; the lead only as a digest): the input of `kubectl bounceguard whatif`.")
	fs.Float64Var(&o.ConditionWriteQPS, "condition-write-qps", 100,
		"Mailbox status writes per second that change only conditions (a policy change reaching a whole fleet); "+
			"writes that record a health change or a Smartlead step are never held back by it. 0: unpaced.")
}

// CacheOptions are the manager cache settings bounceguard runs with: objects are cached without their
// managedFields, which no reconciler reads and which can be most of a small object's size; Mailboxes
// without their de-duplication memory (tally.StripRecent), which only the receiver reads; Secrets are
// watched for their metadata alone, without annotations (see WatchSecrets); a shard caches only its own
// Namespaces.
func (o *Options) CacheOptions() cache.Options {
	strip := cache.TransformStripManagedFields()
	opts := cache.Options{DefaultTransform: func(in any) (any, error) {
		switch o := in.(type) {
		case *metav1.PartialObjectMetadata:
			o.Annotations = nil // Secrets' metadata: kubectl's last-applied annotation holds a copy of the data
		case *bgv1.Mailbox:
			tally.StripRecent(&o.Status) // a third of a cached Mailbox; the receiver reads it from the API server
		}
		return strip(in)
	}}
	if shard, err := controllers.ParseShard(o.WatchLabelSelector); err == nil && shard.Selector() != nil {
		opts.ByObject = map[client.Object]cache.ByObject{&corev1.Namespace{}: {Label: shard.Selector()}}
	}
	return opts
}

// LeaderElectionID is the lease the manager elects its leader under: one per shard, so that each shard
// has its own leader; DefaultLeaderElectionID when the manager holds every namespace.
func (o *Options) LeaderElectionID() string {
	shard, err := controllers.ParseShard(o.WatchLabelSelector)
	if err != nil {
		return DefaultLeaderElectionID
	}
	sel := shard.Selector()
	if sel == nil {
		return DefaultLeaderElectionID
	}
	sum := sha256.Sum256([]byte(sel.String()))
	return "bounceguard-shard-" + hex.EncodeToString(sum[:5]) + ".bounceguard.io"
}

// PodNamespace is the namespace the manager runs in: $POD_NAMESPACE, else the service account's
// namespace file in a pod, else "default" (so that replicas run outside a cluster still elect a leader).
func PodNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "default"
}

// Validate reports options that cannot work.
func (o *Options) Validate() error {
	if _, err := controllers.ParseShard(o.WatchLabelSelector); err != nil {
		return err
	}
	if o.ReceiverMaxEventAge < 0 || o.ReceiverMaxEventAge > webhookreceiver.DedupHorizon {
		return fmt.Errorf("--receiver-max-event-age %s: must be between 0 and the de-duplication horizon %s, "+
			"or an older retry could be counted twice", o.ReceiverMaxEventAge, webhookreceiver.DedupHorizon)
	}
	if o.ReceiverMaxBuffer < 0 || (o.ReceiverMaxBuffer > 0 && o.ReceiverMaxBuffer < 2*o.ReceiverMaxBody) {
		return fmt.Errorf("--receiver-max-buffer %d: must be 0 (no bound) or at least twice --receiver-max-body %d "+
			"(a body of unknown length holds its old and new buffer while it grows), or the largest bodies could never be read",
			o.ReceiverMaxBuffer, o.ReceiverMaxBody)
	}
	if o.ConditionWriteQPS < 0 {
		return fmt.Errorf("--condition-write-qps %g: must be 0 (unpaced) or more", o.ConditionWriteQPS)
	}
	return nil
}

// Setup registers bounceguard with the manager: its field indexes, the Secret store, the notifier, the
// reconcilers with the Smartlead queues, and (unless opts.ReceiverBindAddress is "" or "0") the webhook
// receiver and the execution gate with their readiness check.
func Setup(mgr ctrl.Manager, opts Options) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	if err := index.AddIndexes(context.Background(), mgr.GetFieldIndexer()); err != nil {
		return fmt.Errorf("registering field indexes: %w", err)
	}
	shard, err := controllers.NewShard(opts.WatchLabelSelector, mgr.GetCache())
	if err != nil {
		return err
	}
	fleet, err := controllers.NewFleet(mgr)
	if err != nil {
		return err
	}
	secrets, err := WatchSecrets(mgr)
	if err != nil {
		return err
	}
	notifier := &notify.Dispatcher{Secrets: secrets, Window: opts.NotifyWindow, Backoff: opts.NotifyBackoff}
	if err := mgr.Add(notifier); err != nil {
		return fmt.Errorf("adding the notifier: %w", err)
	}
	policies := &controllers.ProtectionPolicyReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("bounceguard"), Fleet: fleet,
		Shard: shard, Secrets: secrets, Notifier: notifier}
	if err := policies.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the ProtectionPolicy controller: %w", err)
	}
	notifier.Changed = policies.NotificationStatusChanged // a delivery outcome is written to its policy's status
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Smartlead == nil {
		opts.Smartlead = &controllers.SecretSmartleadProvider{Reader: secrets, Limiters: &smartlead.Limiters{},
			Accounts: &smartlead.Directories{}, Options: opts.SmartleadOptions}
	}
	mailboxes := &controllers.MailboxReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("bounceguard"),
		Clock: opts.Clock, Smartlead: opts.Smartlead, APIReader: mgr.GetAPIReader(), Fleet: fleet, Shard: shard, Notifier: notifier}
	if opts.ConditionWriteQPS > 0 {
		mailboxes.ConditionWrites = rate.NewLimiter(rate.Limit(opts.ConditionWriteQPS), 1+int(opts.ConditionWriteQPS/10))
	}
	mailboxes.Queues = mailboxes.NewSmartleadQueues()
	if err := mgr.Add(mailboxes.Queues); err != nil {
		return fmt.Errorf("adding the Smartlead queues: %w", err)
	}
	if err := mailboxes.SetupWithManager(mgr, opts.MailboxConcurrency); err != nil {
		return fmt.Errorf("setting up the Mailbox controller: %w", err)
	}
	if err := (&controllers.AccountSyncReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("bounceguard"), Clock: opts.Clock,
		Shard: shard, Smartlead: opts.Smartlead, Writes: rate.NewLimiter(controllers.SyncWriteQPS, controllers.SyncWriteQPS/5),
		APIReader: mgr.GetAPIReader(), Notifier: notifier}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the account sync: %w", err)
	}
	if err := (&controllers.DomainReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("bounceguard"), Clock: opts.Clock,
		Shard: shard, Notifier: notifier}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the Domain controller: %w", err)
	}
	if opts.ReceiverBindAddress == "" || opts.ReceiverBindAddress == "0" {
		return nil
	}
	receiver := &webhookreceiver.Server{
		Addr:             opts.ReceiverBindAddress,
		MaxBody:          opts.ReceiverMaxBody,
		MaxBuffer:        opts.ReceiverMaxBuffer,
		MaxEventAge:      opts.ReceiverMaxEventAge,
		MaxInFlight:      opts.ReceiverMaxInFlight,
		Client:           mgr.GetClient(),
		Committer:        webhookreceiver.NewCommitter(mgr.GetClient(), mgr.GetAPIReader(), opts.ReceiverBatchWindow),
		WaitForCacheSync: mgr.GetCache().WaitForCacheSync,
		Log:              mgr.GetLogger().WithName("receiver"),
		InShard:          shard.Contains,
		LogEvents:        opts.LogEvents,
		Secrets:          secrets,
	}
	secrets.Subscribe(receiver.SecretChanged())
	if err := mgr.Add(receiver); err != nil {
		return fmt.Errorf("adding the webhook receiver: %w", err)
	}
	if err := mgr.AddReadyzCheck("receiver", receiver.ReadyCheck); err != nil {
		return fmt.Errorf("adding the receiver's readiness check: %w", err)
	}
	return nil
}

// WatchSecrets returns a store of the Secrets the policies reference, fed by a metadata-only watch of
// Secrets: no Secret's data is cached but those read through the store.
func WatchSecrets(mgr interface {
	GetCache() cache.Cache
	GetAPIReader() client.Reader
}) (*secretstore.Store, error) {
	informer, err := mgr.GetCache().GetInformer(context.Background(), secretstore.SecretMetadata())
	if err != nil {
		return nil, fmt.Errorf("watching Secrets' metadata: %w", err)
	}
	store := &secretstore.Store{Reader: mgr.GetAPIReader()}
	return store, store.Watch(informer)
}
