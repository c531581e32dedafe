package features_test

import (
	"testing"

	"github.com/riskengine/risk/features/kv"
	"github.com/riskengine/risk/features/kv/kvtest"
)

func TestKVContract(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.DB {
		return openStore(t, t.TempDir(), nil).KV()
	})
}
