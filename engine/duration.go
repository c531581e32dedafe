package engine

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseLength parses a length of time as analysts write feature windows
// and block-list lifetimes: a Go duration ("90m", "24h") or a whole number
// of days ("7d"). Callers bound it. Its message names the value as a
// window, the word the feature and policy files share.
func ParseLength(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	return 0, fmt.Errorf("window %q: want a duration such as 10m, 24h or 7d", s)
}
