package postgres

// SetDecisionHooks installs test hooks on d; call it before the first
// Commit. before is called with the size of each batch before it is
// written (it may block to hold the committer); queued after each commit
// entered the queue. skipPartitions leaves partitions to the default one.
func SetDecisionHooks(d *Decisions, before func(n int), queued func(), skipPartitions bool) {
	d.beforeBatch, d.queued, d.skipPartitions = before, queued, skipPartitions
}

// IsPartitionViolation exposes isPartitionViolation.
var IsPartitionViolation = isPartitionViolation

// RecentHits is how many ScanRecords reads found their document decoded.
func RecentHits(d *Decisions) uint64 {
	d.recent.mu.Lock()
	defer d.recent.mu.Unlock()
	return d.recent.hits
}
