// Package eventlog names the --log-events line: one structured log line per accepted webhook event, which
// the receiver writes and `kubectl bounceguard whatif` reads back. Both sides take its name and message
// from here, so that neither has to link the other.
package eventlog

const (
	// Name is the logger name of --log-events lines (a suffix of the full name: "receiver.events").
	Name = "events"
	// Message is the message of every --log-events line.
	Message = "event recorded"
)
