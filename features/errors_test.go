package features_test

import (
	"errors"

	"github.com/riskengine/risk/engine"
)

func asFieldError(err error, fe **engine.FieldError) bool { return errors.As(err, fe) }
