package engine

import (
	"context"
	"hash/fnv"
)

// Splitter is a RuleSet that lets another set decide some transactions:
// the engine asks it which set decides each one before evaluating, and the
// record carries that set's version.
type Splitter interface {
	// Pick returns the set that decides transactionID. It must return the
	// same set for the same id for as long as the splitter is live, so a
	// retry meets the version that decided the first attempt.
	Pick(transactionID string) RuleSet
}

// CanaryBuckets is how many buckets CanaryBucket spreads transactions
// over: a percentage is a hundred of them.
const CanaryBuckets = 10000

// CanaryBucket is the bucket of a transaction id, 0 to CanaryBuckets-1: a
// hash of the id, so a transaction always lands in the same bucket.
func CanaryBucket(transactionID string) int {
	h := fnv.New64a()
	h.Write([]byte("risk canary\x00"))
	h.Write([]byte(transactionID))
	return int(h.Sum64() % CanaryBuckets)
}

// Canary is a live rule set with a candidate deciding Percent of
// transactions, chosen by CanaryBucket. It is immutable and safe for
// concurrent use; as a RuleSet on its own it is the live set.
type Canary struct {
	Live      RuleSet
	Candidate RuleSet
	// Percent of transactions the candidate decides, 1 to 99.
	Percent int
}

var (
	_ RuleSet  = (*Canary)(nil)
	_ Splitter = (*Canary)(nil)
)

// Pick implements Splitter.
func (c *Canary) Pick(transactionID string) RuleSet {
	if CanaryBucket(transactionID) < c.Percent*(CanaryBuckets/100) {
		return c.Candidate
	}
	return c.Live
}

// Version is the live version's.
func (c *Canary) Version() int64 { return c.Live.Version() }

// Thresholds are the live version's.
func (c *Canary) Thresholds() Thresholds { return c.Live.Thresholds() }

// Evaluate evaluates the live set.
func (c *Canary) Evaluate(ctx context.Context, in *Input, dst []RuleResult) []RuleResult {
	return c.Live.Evaluate(ctx, in, dst)
}
