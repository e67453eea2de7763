// Command smartlead-standin serves the stand-in Smartlead API (package smartlead/standin) on a port, for
// trying bounceguard against a cluster without touching a real Smartlead account:
//
//	go run ./hack/smartlead-standin --addr :8090 --api-key dev-key --accounts alice@acme.com=4711,bob@acme.com
//
// Point a ProtectionPolicy's spec.smartlead.baseURL at http://<host>:8090/api/v1. The recorded calls are at
// /_standin/calls, the accounts and campaigns at /_standin/state.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/bounceguard/bounceguard/internal/smartlead/standin"
)

func main() {
	addr := flag.String("addr", ":8090", "Address to listen on.")
	apiKey := flag.String("api-key", "", "The only api_key accepted (required).")
	accounts := flag.String("accounts", "", "Accounts to create: comma-separated email or email=id.")
	flag.Parse()
	if *apiKey == "" {
		fmt.Fprintln(os.Stderr, "smartlead-standin: --api-key is required")
		os.Exit(2)
	}
	s := standin.New(*apiKey, "/api/v1")
	if err := s.Seed(*accounts); err != nil {
		fmt.Fprintln(os.Stderr, "smartlead-standin:", err)
		os.Exit(2)
	}
	fmt.Printf("stand-in Smartlead API on %s/api/v1 (calls: /_standin/calls, state: /_standin/state)\n", *addr)
	srv := &http.Server{Addr: *addr, Handler: s, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "smartlead-standin:", err)
		os.Exit(1)
	}
}
