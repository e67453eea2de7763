package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	bgv1 "github.com/bounceguard/bounceguard/api/v1alpha1"
	"github.com/bounceguard/bounceguard/internal/smartlead"
	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
)

// enforcerRig is one mailbox's enforcer against the stand-in Smartlead over real HTTP, with a status store
// that keeps what a save wrote, as the API server would: a "crash" throws away everything not saved.
type enforcerRig struct {
	t      *testing.T
	sl     *standin.Server
	sc     smartlead.Client
	url    string
	mb     *bgv1.Mailbox
	saved  bgv1.SmartleadState
	saves  int
	events []string
	// crashAfter, when set, makes every save fail once a call with this prefix (e.g. "PUT /email-accounts/suspend/")
	// reached Smartlead: the process died after the call and before it could record its outcome.
	crashAfter string
}

const rigKey = "sk-live-4f1c2b-DO-NOT-LOG"

func newEnforcerRig(t *testing.T) *enforcerRig {
	t.Helper()
	r := &enforcerRig{t: t, sl: standin.New(rigKey, "/api/v1")}
	srv := httptest.NewServer(r.sl)
	t.Cleanup(srv.Close)
	r.url = srv.URL + "/api/v1"
	sc, err := smartlead.New(r.url, rigKey, smartlead.Options{Limiter: smartlead.NewLimiter(rate.Inf, 1),
		Backoff: time.Millisecond, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	r.sc = sc
	return r
}

// mailbox makes the rig's mailbox, for an account with an id in its spec.
func (r *enforcerRig) mailbox(email string, id int64) {
	r.mb = &bgv1.Mailbox{ObjectMeta: metav1.ObjectMeta{Name: strings.ReplaceAll(email, "@", "-"), Namespace: "acme"},
		Spec: bgv1.MailboxSpec{Email: email, SmartleadAccountID: ptr.To(id)}}
	r.saved = bgv1.SmartleadState{}
}

func (r *enforcerRig) enforcer() *enforcer {
	return &enforcer{sl: r.sc, mb: r.mb, now: time.Now(),
		creds: Credentials{Namespace: "acme", APIKeySecretRef: &bgv1.SecretKeySelector{Name: "smartlead", Key: "apiKey"}, BaseURL: r.url},
		save: func(context.Context) error {
			if r.crashAfter != "" && slices.ContainsFunc(r.sl.CallStrings(), func(c string) bool { return strings.HasPrefix(c, r.crashAfter) }) {
				return errors.New("the manager is gone")
			}
			r.saves++
			r.saved = *r.mb.Status.Smartlead.DeepCopy()
			return nil
		},
		report: func(reason, message string) { r.events = append(r.events, reason+": "+message) }}
}

// restart is a new manager: it knows of the mailbox only what was saved.
func (r *enforcerRig) restart() {
	r.crashAfter = ""
	r.mb.Status.Smartlead = *r.saved.DeepCopy()
}

func (r *enforcerRig) pause(action bgv1.PauseAction) error {
	return r.enforcer().pause(context.Background(), action, "BounceThreshold")
}

func (r *enforcerRig) resume() error { return r.enforcer().resume(context.Background()) }

func (r *enforcerRig) account(id int64) standin.Account {
	r.t.Helper()
	a, ok := r.sl.Account(id)
	if !ok {
		r.t.Fatalf("no account %d", id)
	}
	return a
}

func (r *enforcerRig) campaign(id int64) []int64 {
	c, _ := r.sl.Campaign(id)
	return c.AccountIDs
}

// A resume never stops half-way: a campaign that refuses the restore for good (archived: 400) or is gone
// (404) is skipped, listed and reported, and the daily limit, the unsuspend and the other campaigns still
// run; 429, 5xx and timeouts keep the step on record and return the error, to be retried.
func TestResumeNeverStopsHalfWay(t *testing.T) {
	r := newEnforcerRig(t)
	id := r.sl.AddAccount("tom.baker@acme-mail.io")
	other := r.sl.AddAccount("uma.park@acme-mail.io")
	first := r.sl.AddCampaign("ACTIVE", other, id)
	archived := r.sl.AddCampaign("ACTIVE", other, id)
	deleted := r.sl.AddCampaign("PAUSED", other, id)
	last := r.sl.AddCampaign("ACTIVE", other, id)
	lonely := r.sl.AddCampaign("ACTIVE", id) // refused: the account is suspended as well
	r.mailbox("tom.baker@acme-mail.io", id)
	if err := r.pause(bgv1.PauseActionRemoveFromCampaigns); err != nil {
		t.Fatal(err)
	}
	st := &r.mb.Status.Smartlead
	if !slices.Equal(st.RemovedCampaignIDs, []int64{first, archived, deleted, last}) || !st.Suspended {
		t.Fatalf("after the pause: %+v", st)
	}
	r.sl.SetCampaignStatus(archived, standin.CampaignArchived)
	r.sl.DeleteCampaign(deleted)

	// A rate limit, then an outage, on the restore of the last campaign: on record, returned, retried.
	r.sl.Inject(standin.Fault{Count: 3, Code: http.StatusTooManyRequests, RetryAfter: "0", Method: http.MethodPost,
		PathPrefix: fmt.Sprintf("/campaigns/%d/", last)})
	r.sl.Inject(standin.Fault{Count: 3, Code: http.StatusBadGateway, Method: http.MethodPost, PathPrefix: fmt.Sprintf("/campaigns/%d/", last)})
	for i, want := range []int{429, 502} {
		err := r.resume()
		var ae *smartlead.APIError
		if !errors.As(err, &ae) || ae.StatusCode != want {
			t.Fatalf("resume %d: %v, want HTTP %d", i, err, want)
		}
		if !slices.Equal(r.saved.RemovedCampaignIDs, []int64{last}) || !r.saved.Paused {
			t.Fatalf("resume %d: the restore still to do is not on record: %+v", i, r.saved)
		}
	}
	if err := r.resume(); err != nil {
		t.Fatal(err)
	}
	if a := r.account(id); a.Suspended {
		t.Error("still suspended")
	}
	for _, c := range []int64{first, last} {
		if got := r.campaign(c); !slices.Equal(got, []int64{other, id}) {
			t.Errorf("campaign %d: %v", c, got)
		}
	}
	if got := r.campaign(archived); !slices.Equal(got, []int64{other}) {
		t.Errorf("archived campaign %d changed: %v", archived, got)
	}
	if holdsPause(&r.saved) || !slices.Equal(r.saved.SkippedCampaignIDs, []int64{archived, deleted}) {
		t.Errorf("the record after the resume: %+v", r.saved)
	}
	wantEvents := []string{
		fmt.Sprintf("CampaignRefused: campaign %d refused for good while restoring account %d (smartlead AddToCampaign: HTTP 400", archived, id),
		fmt.Sprintf("CampaignGone: campaign %d no longer exists in Smartlead (404): skipped while restoring account %d", deleted, id),
	}
	if len(r.events) != 2 || !strings.HasPrefix(r.events[0], wantEvents[0]) || !strings.HasPrefix(r.events[1], wantEvents[1]) {
		t.Errorf("events:\n%s\nwant prefixes:\n%s", strings.Join(r.events, "\n"), strings.Join(wantEvents, "\n"))
	}
	// Smartlead adds only accounts that are not suspended: the unsuspend comes before the restores.
	calls := r.sl.CallStrings(http.MethodPost, http.MethodDelete)
	unsuspend := slices.Index(calls, fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id))
	restore := slices.IndexFunc(calls, func(c string) bool { return strings.HasPrefix(c, "POST /campaigns/") })
	if unsuspend < 0 || restore < unsuspend {
		t.Errorf("calls: %v", calls)
	}
	if got := r.campaign(lonely); !slices.Equal(got, []int64{id}) {
		t.Errorf("the campaign that refused the removal: %v", got)
	}
}

// A ZeroDailyLimit resume whose restore Smartlead refuses for good goes on (and says which value to set by
// hand); a pause step that Smartlead refuses for good (the campaign list, the daily limit) suspends instead.
func TestRefusedStepsDoNotStopAPauseOrAResume(t *testing.T) {
	for _, c := range []struct {
		name   string
		action bgv1.PauseAction
		fault  standin.Fault
	}{
		{"campaign list refused", bgv1.PauseActionRemoveFromCampaigns, standin.Fault{Count: -1, Code: http.StatusBadRequest, Method: http.MethodGet}},
		{"daily limit read refused", bgv1.PauseActionZeroDailyLimit, standin.Fault{Count: -1, Code: http.StatusUnprocessableEntity, Method: http.MethodGet}},
		{"daily limit write refused", bgv1.PauseActionZeroDailyLimit, standin.Fault{Count: -1, Code: http.StatusBadRequest, Method: http.MethodPost}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newEnforcerRig(t)
			id := r.sl.AddAccount("vic.novak@acme-mail.io")
			r.sl.AddCampaign("ACTIVE", r.sl.AddAccount("wes.ortiz@acme-mail.io"), id)
			r.mailbox("vic.novak@acme-mail.io", id)
			r.sl.Inject(c.fault)
			if err := r.pause(c.action); err != nil {
				t.Fatalf("pause: %v", err)
			}
			if !r.account(id).Suspended || !r.saved.Paused || !strings.Contains(r.saved.LastError, "suspended instead") {
				t.Fatalf("not suspended instead: %+v", r.saved)
			}
			if r.account(id).MessagePerDay != 40 {
				t.Errorf("daily limit changed: %d", r.account(id).MessagePerDay)
			}
			if len(r.events) != 1 || !strings.Contains(r.events[0], "the account is suspended instead") {
				t.Errorf("events: %v", r.events)
			}
			if err := r.resume(); err != nil {
				t.Fatalf("resume: %v", err)
			}
			if r.account(id).Suspended || holdsPause(&r.saved) {
				t.Errorf("after the resume: account %+v, record %+v", r.account(id), r.saved)
			}
		})
	}

	t.Run("daily limit restore refused", func(t *testing.T) {
		r := newEnforcerRig(t)
		id := r.sl.AddAccount("xena.moss@acme-mail.io")
		r.sl.SetAccountDailyLimit(id, 55)
		r.mailbox("xena.moss@acme-mail.io", id)
		if err := r.pause(bgv1.PauseActionZeroDailyLimit); err != nil {
			t.Fatal(err)
		}
		r.sl.Inject(standin.Fault{Count: -1, Code: http.StatusBadRequest, Method: http.MethodPost})
		if err := r.resume(); err != nil {
			t.Fatalf("resume: %v", err)
		}
		if holdsPause(&r.saved) || len(r.events) != 1 || !strings.Contains(r.events[0], "set it to 55 by hand") {
			t.Errorf("record %+v, events %v", r.saved, r.events)
		}
	})
}

// An account deleted in Smartlead while paused ends the pause record at the first call about it, whatever
// the pause did: Smartlead answers 400 to its unsuspend (and 404 to reading it), nothing is left to undo,
// and the mailbox no longer holds a pause. A pause of an account already gone ends the same way.
func TestAccountDeletedWhilePausedEndsTheRecord(t *testing.T) {
	for _, action := range []bgv1.PauseAction{bgv1.PauseActionSuspend, bgv1.PauseActionRemoveFromCampaigns, bgv1.PauseActionZeroDailyLimit} {
		t.Run(string(action), func(t *testing.T) {
			r := newEnforcerRig(t)
			id := r.sl.AddAccount("yuri.lang@acme-mail.io")
			r.sl.AddCampaign("ACTIVE", r.sl.AddAccount("zoe.kim@acme-mail.io"), id)
			r.mailbox("yuri.lang@acme-mail.io", id)
			if err := r.pause(action); err != nil {
				t.Fatal(err)
			}
			if !holdsPause(&r.saved) {
				t.Fatalf("not paused: %+v", r.saved)
			}
			r.sl.DeleteAccount(id)
			err := r.resume()
			if !errors.Is(err, errAccountGone) {
				t.Fatalf("resume: %v, want the account gone", err)
			}
			if holdsPause(&r.saved) || !r.saved.AccountGone || r.saved.AccountID != id {
				t.Errorf("record: %+v", r.saved)
			}
			if err := r.resume(); err != nil {
				t.Errorf("a second resume: %v", err)
			}
		})
	}
	t.Run("paused when already gone", func(t *testing.T) {
		r := newEnforcerRig(t)
		id := r.sl.AddAccount("ada.cole@acme-mail.io")
		r.mailbox("ada.cole@acme-mail.io", id)
		r.sl.DeleteAccount(id)
		if err := r.pause(bgv1.PauseActionSuspend); !errors.Is(err, errAccountGone) {
			t.Fatalf("pause: %v", err)
		}
		if holdsPause(&r.saved) || !r.saved.AccountGone {
			t.Errorf("record: %+v", r.saved)
		}
	})
	t.Run("a 400 from an account that still exists is not taken for gone", func(t *testing.T) {
		r := newEnforcerRig(t)
		id := r.sl.AddAccount("bo.reyes@acme-mail.io")
		r.mailbox("bo.reyes@acme-mail.io", id)
		if err := r.pause(bgv1.PauseActionSuspend); err != nil {
			t.Fatal(err)
		}
		r.sl.Inject(standin.Fault{Count: 1, Code: http.StatusBadRequest, Method: http.MethodDelete})
		if err := r.resume(); err == nil || errors.Is(err, errAccountGone) || !refusedForGood(err) {
			t.Fatalf("resume: %v", err)
		}
		if !r.saved.Suspended || r.saved.AccountGone {
			t.Fatalf("record: %+v", r.saved)
		}
		if err := r.resume(); err != nil || r.account(id).Suspended {
			t.Fatalf("second resume: %v, %+v", err, r.account(id))
		}
	})
}

// A suspend that took effect but whose answer was lost — a gateway's 504 on every attempt after Smartlead
// acted, or the manager dying between the call and the save — is undone by the resume: the intent was
// saved before the call.
func TestLostSuspendAnswerIsUndone(t *testing.T) {
	t.Run("504 after the suspend took effect", func(t *testing.T) {
		r := newEnforcerRig(t)
		id := r.sl.AddAccount("cy.hart@acme-mail.io")
		r.mailbox("cy.hart@acme-mail.io", id)
		r.sl.Inject(standin.Fault{Count: -1, Code: http.StatusGatewayTimeout, Applied: true, Method: http.MethodPut})
		if err := r.pause(bgv1.PauseActionSuspend); err == nil {
			t.Fatal("the pause reported success")
		}
		if !r.account(id).Suspended {
			t.Fatal("the stand-in did not apply the suspend")
		}
		r.sl.ClearFaults()
		r.restart()
		if err := r.resume(); err != nil {
			t.Fatal(err)
		}
		if r.account(id).Suspended {
			t.Error("the suspend whose answer was lost was never undone")
		}
	})
	t.Run("no answer at all: the client times out, Smartlead suspends after it gave up", func(t *testing.T) {
		r := newEnforcerRig(t)
		sc, err := smartlead.New(r.url, rigKey, smartlead.Options{Limiter: smartlead.NewLimiter(rate.Inf, 1),
			Backoff: time.Millisecond, MaxAttempts: 2, HTTPClient: &http.Client{Timeout: 50 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		r.sc = sc
		id := r.sl.AddAccount("eli.ward@acme-mail.io")
		r.mailbox("eli.ward@acme-mail.io", id)
		r.sl.SetLatency(200 * time.Millisecond)
		var ae *smartlead.APIError
		if err := r.pause(bgv1.PauseActionSuspend); !errors.As(err, &ae) || ae.StatusCode != 0 {
			t.Fatalf("pause: %v, want no answer", err)
		}
		r.sl.SetLatency(0)
		deadline := time.Now().Add(5 * time.Second)
		for !r.account(id).Suspended && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond) // the stand-in finishes the request the client gave up on
		}
		r.restart()
		if err := r.resume(); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(r.sl.CallStrings(), fmt.Sprintf("DELETE /email-accounts/unsuspend/%d", id)) || r.account(id).Suspended {
			t.Errorf("not undone: %v", r.sl.CallStrings())
		}
	})
	for _, action := range []bgv1.PauseAction{bgv1.PauseActionSuspend, bgv1.PauseActionRemoveFromCampaigns} {
		t.Run("crash after the suspend call, "+string(action), func(t *testing.T) {
			r := newEnforcerRig(t)
			id := r.sl.AddAccount("di.frost@acme-mail.io")
			r.sl.AddCampaign("ACTIVE", id) // refused (last account): suspended instead
			r.mailbox("di.frost@acme-mail.io", id)
			r.crashAfter = "PUT /email-accounts/suspend/"
			if err := r.pause(action); err == nil {
				t.Fatal("the pause survived the crash")
			}
			r.restart()
			if !r.account(id).Suspended || !holdsPause(&r.mb.Status.Smartlead) {
				t.Fatalf("account %+v, saved %+v", r.account(id), r.saved)
			}
			if err := r.resume(); err != nil {
				t.Fatal(err)
			}
			if r.account(id).Suspended {
				t.Error("the suspend made before the crash was never undone")
			}
		})
	}
}

// An address that no Smartlead account sends as is an account gone too: nothing to pause, nothing to undo,
// and no call made again and again.
func TestPauseOfAnAddressWithoutAnAccount(t *testing.T) {
	r := newEnforcerRig(t)
	r.sl.AddAccount("someone.else@acme-mail.io")
	r.mailbox("eve.stone@acme-mail.io", 0)
	r.mb.Spec.SmartleadAccountID = nil
	if err := r.pause(bgv1.PauseActionSuspend); !errors.Is(err, errAccountGone) {
		t.Fatalf("pause: %v", err)
	}
	if holdsPause(&r.saved) || !r.saved.AccountGone || r.saved.AccountID != 0 {
		t.Errorf("record: %+v", r.saved)
	}
	if got := goneAccount(r.mb); got != "no account with the address eve.stone@acme-mail.io" {
		t.Errorf("named as %q", got)
	}
}

// A drifted pause applied again meets the same answers as a pause: a campaign that refuses the removal for
// good suspends the account instead, and an account deleted meanwhile ends the record.
func TestReapplyMeetsRefusals(t *testing.T) {
	setup := func(t *testing.T) (*enforcerRig, int64, int64) {
		r := newEnforcerRig(t)
		id := r.sl.AddAccount("finn.hale@acme-mail.io")
		c := r.sl.AddCampaign("ACTIVE", r.sl.AddAccount("gus.ito@acme-mail.io"), id)
		r.mailbox("finn.hale@acme-mail.io", id)
		if err := r.pause(bgv1.PauseActionRemoveFromCampaigns); err != nil {
			t.Fatal(err)
		}
		// A person puts it back in the campaign; the sync sees it.
		if code := addBack(r, c, id); code != http.StatusOK {
			t.Fatalf("adding it back: %d", code)
		}
		r.mb.Status.Account = &bgv1.AccountState{ID: id, BackInCampaigns: 1, DailyLimit: 40}
		return r, id, c
	}
	t.Run("archived meanwhile", func(t *testing.T) {
		r, id, c := setup(t)
		r.sl.SetCampaignStatus(c, standin.CampaignArchived)
		if err := r.enforcer().reapply(context.Background()); err != nil {
			t.Fatalf("reapply: %v", err)
		}
		if !r.account(id).Suspended || !r.saved.Reapplied || !r.saved.SuspendRequested {
			t.Errorf("account %+v, record %+v", r.account(id), r.saved)
		}
		if err := r.resume(); err != nil || r.account(id).Suspended {
			t.Errorf("resume: %v, account %+v", err, r.account(id))
		}
	})
	t.Run("account deleted meanwhile", func(t *testing.T) {
		r, id, _ := setup(t)
		r.sl.DeleteAccount(id)
		if err := r.enforcer().reapply(context.Background()); !errors.Is(err, errAccountGone) {
			t.Fatalf("reapply: %v", err)
		}
		if holdsPause(&r.saved) || !r.saved.AccountGone {
			t.Errorf("record: %+v", r.saved)
		}
	})
}

// addBack puts an account back into a campaign as a person would, through the API.
func addBack(r *enforcerRig, campaign, id int64) int {
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("%s/campaigns/%d/email-accounts?api_key=%s", r.url, campaign, rigKey),
		strings.NewReader(fmt.Sprintf(`{"email_account_ids":[%d]}`, id)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A 404 that is not the account's — every path answering 404 (a gateway or load balancer between
// deploys, a base URL that lost its /api/v1) — is not a deleted account: the pause record is kept (the
// account is still suspended in Smartlead) and the step is retried; once Smartlead answers again the
// resume undoes the pause. Only a 404 for the account while the account list still answers ends the record.
func TestA404FromEveryPathIsNotAGoneAccount(t *testing.T) {
	for _, action := range []bgv1.PauseAction{bgv1.PauseActionSuspend, bgv1.PauseActionRemoveFromCampaigns, bgv1.PauseActionZeroDailyLimit} {
		t.Run("resume, "+string(action), func(t *testing.T) {
			r := newEnforcerRig(t)
			id := r.sl.AddAccount("hal.moss@acme-mail.io")
			c := r.sl.AddCampaign("ACTIVE", r.sl.AddAccount("ida.lund@acme-mail.io"), id)
			r.mailbox("hal.moss@acme-mail.io", id)
			if err := r.pause(action); err != nil {
				t.Fatal(err)
			}
			r.sl.Inject(standin.Fault{Count: -1, Code: http.StatusNotFound})
			if err := r.resume(); err == nil || errors.Is(err, errAccountGone) {
				t.Fatalf("resume while every path answers 404: %v, want an error to retry", err)
			}
			if !holdsPause(&r.saved) || r.saved.AccountGone {
				t.Fatalf("the pause record was ended while the account is still paused: %+v", r.saved)
			}
			r.sl.ClearFaults()
			if err := r.resume(); err != nil {
				t.Fatal(err)
			}
			if a := r.account(id); a.Suspended || a.MessagePerDay != 40 || !slices.Contains(r.campaign(c), id) {
				t.Errorf("not undone: %+v, campaign %v", a, r.campaign(c))
			}
		})
	}
	t.Run("pause", func(t *testing.T) {
		r := newEnforcerRig(t)
		id := r.sl.AddAccount("jo.penn@acme-mail.io")
		r.mailbox("jo.penn@acme-mail.io", id)
		r.sl.Inject(standin.Fault{Count: -1, Code: http.StatusNotFound})
		if err := r.pause(bgv1.PauseActionSuspend); err == nil || errors.Is(err, errAccountGone) {
			t.Fatalf("pause while every path answers 404: %v, want an error to retry", err)
		}
		if r.saved.AccountGone {
			t.Fatalf("taken for gone: %+v", r.saved)
		}
		r.sl.ClearFaults()
		if err := r.pause(bgv1.PauseActionSuspend); err != nil || !r.account(id).Suspended {
			t.Fatalf("pause: %v, %+v", err, r.account(id))
		}
	})
	t.Run("every path answers 404 from just after the campaign list", func(t *testing.T) {
		r := newEnforcerRig(t)
		id := r.sl.AddAccount("lea.brandt@acme-mail.io")
		c := r.sl.AddCampaign("ACTIVE", r.sl.AddAccount("max.ortiz@acme-mail.io"), id)
		r.mailbox("lea.brandt@acme-mail.io", id)
		e := r.enforcer()
		save := e.save
		e.save = func(ctx context.Context) error {
			if len(r.mb.Status.Smartlead.RemovedCampaignIDs) > 0 && len(r.sl.CallStrings("DELETE")) == 0 {
				r.sl.Inject(standin.Fault{Count: -1, Code: http.StatusNotFound})
			}
			return save(ctx)
		}
		err := e.pause(context.Background(), bgv1.PauseActionRemoveFromCampaigns, "BounceThreshold")
		if err == nil || r.saved.Paused || slices.Contains(r.saved.SkippedCampaignIDs, c) || !slices.Contains(r.saved.RemovedCampaignIDs, c) {
			t.Fatalf("pause: %v; the campaign was taken for gone while the account still sends in it: %+v", err, r.saved)
		}
		r.sl.ClearFaults()
		if err := r.pause(bgv1.PauseActionRemoveFromCampaigns); err != nil || slices.Contains(r.campaign(c), id) {
			t.Fatalf("pause: %v, campaign %v", err, r.campaign(c))
		}
	})
	t.Run("by address", func(t *testing.T) {
		r := newEnforcerRig(t)
		r.sl.AddAccount("kai.rowe@acme-mail.io")
		r.mailbox("kai.rowe@acme-mail.io", 0)
		r.mb.Spec.SmartleadAccountID = nil
		r.sl.Inject(standin.Fault{Count: -1, Code: http.StatusNotFound})
		if err := r.pause(bgv1.PauseActionSuspend); err == nil || errors.Is(err, errAccountGone) || r.saved.AccountGone {
			t.Fatalf("pause while the account list answers 404: %v, record %+v", err, r.saved)
		}
	})
}
