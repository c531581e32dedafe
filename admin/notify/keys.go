package notify

import (
	"encoding/binary"

	"github.com/riskengine/risk/features/keyspace"
)

// Keys of this package in kv.DB: every prefix is here, and in the table of
// docs/architecture.md. Values start with formatJSON, then JSON.
const (
	// prefixHook: hook id -> hook (with its signing secret).
	prefixHook = keyspace.WebhookHook
	// prefixEvent: event id -> event body as delivered (raw JSON);
	// expires after Retention.
	prefixEvent = keyspace.WebhookEvent
	// prefixDue: hook id + 0 + 8-byte due time (Unix ns) + event id ->
	// task; the outbox, one queue per hook in the order deliveries are
	// due, so a hook with a backlog costs the others nothing.
	prefixDue = keyspace.WebhookDue
	// prefixLog: hook id + 0 + 8-byte time (Unix ns) + event id -> attempt;
	// the deliveries log, expiring after Retention.
	prefixLog = keyspace.WebhookLog
	// keyCursor: sequence number of the next decision read from the log.
	keyCursor = keyspace.WebhookCursor
	// keyAuditCursor: number of the last audit entry read.
	keyAuditCursor = keyspace.WebhookAuditCursor
	// prefixAlertRule: alert rule id -> rule.
	prefixAlertRule = keyspace.AlertRule
	// prefixAlert: 8-byte fired time + alert rule id -> alert (firing and
	// recent); expires after Retention once resolved.
	prefixAlert = keyspace.Alert
	// keyAlertSeeded: present once the default alert rules were stored, so
	// deleting a default is not undone at the next start.
	keyAlertSeeded = keyspace.AlertSeeded
)

// formatJSON is the format byte of every value this package stores.
const formatJSON = 0x01

func duePrefix(hookID string) []byte {
	return append([]byte(prefixDue+hookID), 0)
}

func dueKey(due int64, hookID, eventID string) []byte {
	k := binary.BigEndian.AppendUint64(duePrefix(hookID), uint64(due))
	return append(k, eventID...)
}

func logPrefix(hookID string) []byte {
	return append([]byte(prefixLog+hookID), 0)
}

func logKey(hookID string, at int64, eventID string) []byte {
	k := binary.BigEndian.AppendUint64(logPrefix(hookID), uint64(at))
	return append(k, eventID...)
}

func alertKey(fired int64, ruleID string) []byte {
	k := binary.BigEndian.AppendUint64([]byte(prefixAlert), uint64(fired))
	return append(k, ruleID...)
}
