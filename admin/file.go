package admin

import (
	"github.com/riskengine/risk/rules"
)

// CheckFile parses a rule set file and compiles it against env. Errors are
// a *rules.CompileError: the very list POST /admin/ruleset/import answers
// with (422) and `risk rules validate FILE` prints, one per line.
func CheckFile(data []byte, env rules.Env) (rules.File, error) {
	f, err := rules.ParseFile(data)
	if err != nil {
		return rules.File{}, err
	}
	if _, err := rules.Compile(f.Spec, env, 0); err != nil {
		return rules.File{}, err
	}
	return f, nil
}
