// Package controllers holds bounceguard's reconcilers: ProtectionPolicy (Ready, counts, notification
// status), Mailbox (health and the Smartlead pauses and resumes, run on per-key queues), Domain (a
// domain's health from its mailboxes) and the Smartlead account sync, with the namespace shard and the
// fleet counts they share. internal/manager wires them, with the webhook receiver, into a process.
package controllers
