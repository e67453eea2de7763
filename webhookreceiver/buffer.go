package webhookreceiver

import "sync/atomic"

// bufferBudget (stub, before the fix).
type bufferBudget struct {
	used, peak atomic.Int64
}
