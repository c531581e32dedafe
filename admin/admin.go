package admin

import (
	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// Require returns middleware admitting only the given roles (admins always
// pass). The server provides it, so admin routes share its authentication.
type Require func(roles ...engine.Role) echo.MiddlewareFunc
