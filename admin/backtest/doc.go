// Package backtest answers "what would this rule change have done?" before
// the change goes live, in two ways.
//
// A backtest (Backtests, the /admin/backtests API) replays stored
// decisions from the decision log through a candidate rule set: each
// payment with the feature values and limits it had when it was decided,
// so nothing is recomputed and no live state is touched. It reports the
// old to new outcome table with counts and amounts, per-rule hits, and
// the effect on labelled fraud and honest customers.
//
// An offline replay (Replay, `risk replay`) decides a file of payments in
// time order without a server or a database, computing features from the
// file itself with features.Memory, point-in-time correct. Teams use it to
// test rules in CI against labelled data sets such as testdata/replay.
//
// See docs/backtest.md.
package backtest
