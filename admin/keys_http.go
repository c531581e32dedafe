package admin

import (
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/riskengine/risk/engine"
)

// maxKeyBodyBytes bounds the body of POST /admin/keys.
const maxKeyBodyBytes = 4 << 10

// Register adds the key routes to g, for admin keys only:
//
//	POST   /keys      create a key; the answer holds the key, shown once
//	GET    /keys      list keys, active and revoked, never the keys
//	DELETE /keys/:id  revoke a key at once
func (ks *Keys) Register(g *echo.Group, require Require) {
	admin := require(engine.RoleAdmin)
	g.POST("/keys", ks.createHTTP, admin)
	g.GET("/keys", ks.listHTTP, admin)
	g.DELETE("/keys/:id", ks.revokeHTTP, admin)
}

// keyJSON is a key in API answers. Key is set only in the answer to its
// creation.
type keyJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Hint      string     `json:"hint"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	RevokedBy string     `json:"revoked_by,omitempty"`
	Key       string     `json:"key,omitempty"`
	Warning   string     `json:"warning,omitempty"`
}

func toKeyJSON(k *Key) keyJSON {
	out := keyJSON{
		ID: k.ID, Name: k.Name, Role: string(k.Role), Hint: k.Hint,
		CreatedAt: k.CreatedAt.UTC(), CreatedBy: k.CreatedBy, RevokedBy: k.RevokedBy,
	}
	if !k.Active() {
		t := k.RevokedAt.UTC()
		out.RevokedAt = &t
	}
	return out
}

type createKeyJSON struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// createHTTP is POST /admin/keys.
func (ks *Keys) createHTTP(c echo.Context) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxKeyBodyBytes))
	if err != nil {
		return engine.Invalid("", "body_too_large", "the body is larger than 4096 bytes")
	}
	var in createKeyJSON
	if err := decodeJSON(body, &in); err != nil {
		return err
	}
	k, secret, err := ks.Create(c.Request().Context(), in.Name, engine.Role(in.Role))
	if err != nil {
		return err
	}
	out := toKeyJSON(&k)
	out.Key = secret
	out.Warning = "store this key now: it is shown only once"
	c.Response().Header().Set(echo.HeaderCacheControl, "no-store")
	return c.JSON(http.StatusCreated, out)
}

// listHTTP is GET /admin/keys.
func (ks *Keys) listHTTP(c echo.Context) error {
	all, err := ks.List(c.Request().Context())
	if err != nil {
		return err
	}
	out := struct {
		Keys []keyJSON `json:"keys"`
	}{Keys: make([]keyJSON, len(all))}
	for i := range all {
		out.Keys[i] = toKeyJSON(&all[i])
	}
	return c.JSON(http.StatusOK, out)
}

// revokeHTTP is DELETE /admin/keys/:id.
func (ks *Keys) revokeHTTP(c echo.Context) error {
	k, err := ks.Revoke(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toKeyJSON(&k))
}
