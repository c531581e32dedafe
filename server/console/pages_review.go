package console

import "github.com/labstack/echo/v4"

func (c *Console) registerReviews(g *echo.Group) {}
