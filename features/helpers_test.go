package features_test

import (
	"context"
	"testing"

	"github.com/riskengine/risk/engine"
	"github.com/riskengine/risk/features"
	"github.com/riskengine/risk/features/featurestest"
)

var compileFilter = featurestest.CompileFilter

// openStore opens a Store in dir with defs, closed at the end of the test.
func openStore(tb testing.TB, dir string, defs []features.Definition, opts ...func(*features.Options)) *features.Store {
	tb.Helper()
	o := features.Options{Dir: dir}
	for _, f := range opts {
		f(&o)
	}
	return featurestest.Open(tb, o, defs)
}

var (
	waitReady = featurestest.WaitReady
	record    = featurestest.Record
	commit    = featurestest.Commit
)

// value reads one feature for p.
func value(tb testing.TB, s *features.Store, p engine.Payment, name string) float64 {
	tb.Helper()
	vals, err := s.Features(context.Background(), &p, nil)
	if err != nil {
		tb.Fatalf("features: %v", err)
	}
	for _, v := range vals {
		if v.Name == name {
			return v.Value
		}
	}
	tb.Fatalf("feature %s not found in %v", name, vals)
	return 0
}
