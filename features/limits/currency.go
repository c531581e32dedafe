package limits

import (
	"math"
	"strconv"
)

// MinorUnits returns the number of decimals of a currency's minor unit per
// ISO 4217: 0 for JPY or KRW, 3 for KWD or BHD, 2 for most others.
func MinorUnits(currency string) int {
	switch currency {
	case "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF":
		return 0
	case "BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND":
		return 3
	}
	return 2
}

var pow10 = [...]float64{1, 10, 100, 1000}

// ConvertMinor converts amount, in minor units of from, into minor units of
// to, where rate is the number of units of to per unit of from. The result
// is not rounded. The daily spend of package features is kept in these
// converted amounts, so the formula must not change.
func ConvertMinor(amount float64, from, to string, rate float64) float64 {
	return amount / pow10[MinorUnits(from)] * rate * pow10[MinorUnits(to)]
}

// floorMinor rounds a converted limit down to a whole minor unit, forgiving
// the float noise of a conversion (1079.9999999 is 1080).
func floorMinor(x float64) int64 {
	if x <= 0 || math.IsNaN(x) {
		return 0
	}
	if x >= math.MaxInt64/2 {
		return math.MaxInt64 / 2
	}
	return int64(math.Floor(x + 1e-6))
}

// formatMinor writes an amount in minor units as a decimal with its
// currency: 123456 USD is "1234.56 USD", 1500 JPY is "1500 JPY".
func formatMinor(amount int64, currency string) string {
	d := MinorUnits(currency)
	neg := amount < 0
	if neg {
		amount = -amount
	}
	s := strconv.FormatInt(amount, 10)
	if d > 0 {
		for len(s) <= d {
			s = "0" + s
		}
		s = s[:len(s)-d] + "." + s[len(s)-d:]
	}
	if neg {
		s = "-" + s
	}
	return s + " " + currency
}
