package rules

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
)

// compiler compiles expressions against one declared environment.
type compiler struct {
	types     types.Map
	names     []string // every valid dotted name, for suggestions
	functions []expr.Option
	fnNames   map[string]bool
	// flat is set when the types declare the dotted names of flattened
	// roots; programs are then patched to read them (see flattener).
	flat bool
}

func newCompiler(t types.Map, lists Lists) *compiler {
	c := &compiler{types: t, fnNames: map[string]bool{}}
	for k, v := range t {
		if strings.Contains(k, ".") {
			c.flat = true // a dotted name of a flattened root, listed below
			continue
		}
		c.names = append(c.names, k)
		if m, ok := v.(types.Map); ok {
			for f := range m {
				if f != types.Extra {
					c.names = append(c.names, k+"."+f)
				}
			}
		}
	}
	sort.Strings(c.names)
	zones := &sync.Map{}
	add := func(name string, fn func(params ...any) (any, error), sig any) {
		c.functions = append(c.functions, expr.Function(name, fn, sig))
		c.fnNames[name] = true
	}
	add("in_list", func(params ...any) (any, error) {
		if lists == nil {
			return false, nil
		}
		v, ok := listValue(params[1])
		if !ok {
			return false, nil
		}
		return lists.Contains(params[0].(string), v), nil
	}, new(func(string, any) bool))
	add("ip_in_cidr", func(params ...any) (any, error) {
		ip, err := netip.ParseAddr(params[0].(string))
		if err != nil {
			return false, nil
		}
		prefix, err := netip.ParsePrefix(params[1].(string))
		if err != nil {
			return nil, fmt.Errorf("ip_in_cidr: %w", err)
		}
		return prefix.Contains(ip.Unmap()), nil
	}, new(func(string, string) bool))
	add("hour_of_day", func(params ...any) (any, error) {
		loc, err := zone(zones, params[1].(string))
		if err != nil {
			return nil, err
		}
		return params[0].(time.Time).In(loc).Hour(), nil
	}, new(func(time.Time, string) int))
	add("day_of_week", func(params ...any) (any, error) {
		loc, err := zone(zones, params[1].(string))
		if err != nil {
			return nil, err
		}
		return int(params[0].(time.Time).In(loc).Weekday()), nil
	}, new(func(time.Time, string) int))
	add("days_between", func(params ...any) (any, error) {
		a, b := params[0].(time.Time), params[1].(time.Time)
		if a.IsZero() || b.IsZero() {
			return 0.0, nil
		}
		return b.Sub(a).Hours() / 24, nil
	}, new(func(time.Time, time.Time) float64))
	return c
}

// listValue turns a value given to in_list into the string stored in lists.
func listValue(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, v != ""
	case int:
		return strconv.Itoa(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

func zone(cache *sync.Map, name string) (*time.Location, error) {
	if loc, ok := cache.Load(name); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	cache.Store(name, loc)
	return loc, nil
}

// compile compiles one boolean expression. Errors carry 1-based positions.
func (c *compiler) compile(src string) (*vm.Program, []*Error) {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, []*Error{positioned(err, src)}
	}
	if errs := c.checkNames(tree, src); len(errs) > 0 {
		return nil, errs
	}
	opts := append([]expr.Option{expr.Env(c.types), expr.AsBool(), expr.MaxNodes(MaxNodes)}, c.functions...)
	if c.flat {
		opts = append(opts, expr.Patch(flattener{}))
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, []*Error{positioned(err, src)}
	}
	return prog, nil
}

// positioned turns an expr error into an *Error with a 1-based position.
// Errors without a position (a non-boolean result) point at 1:1.
func positioned(err error, src string) *Error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return &Error{Field: "expression", Line: fe.Line, Column: fe.Column + 1, Message: fe.Message}
	}
	return &Error{Field: "expression", Line: 1, Column: 1, Message: err.Error()}
}

// checkNames reports unknown names with a suggestion of the closest valid
// one, which expr's own checker does not offer.
func (c *compiler) checkNames(tree *parser.Tree, src string) []*Error {
	// Walk visits children first, so declarations and callees are collected
	// in a first pass.
	v := &nameVisitor{c: c, declared: map[string]bool{}, callees: map[ast.Node]bool{}}
	ast.Walk(&tree.Node, v)
	v.checking = true
	ast.Walk(&tree.Node, v)
	var errs []*Error
	for _, u := range v.unknown {
		e := (&file.Error{Location: u.loc, Message: "x"}).Bind(file.NewSource(src))
		msg := fmt.Sprintf("unknown name `%s`", u.name)
		if s := suggest(u.name, c.names); s != "" {
			msg += fmt.Sprintf("; did you mean `%s`", s)
		}
		errs = append(errs, &Error{Field: "expression", Line: e.Line, Column: e.Column + 1, Message: msg})
	}
	return errs
}

type unknownName struct {
	name string
	loc  file.Location
}

type nameVisitor struct {
	c        *compiler
	declared map[string]bool
	callees  map[ast.Node]bool
	checking bool
	unknown  []unknownName
}

func (v *nameVisitor) Visit(node *ast.Node) {
	if !v.checking {
		switch n := (*node).(type) {
		case *ast.VariableDeclaratorNode:
			v.declared[n.Name] = true
		case *ast.CallNode:
			v.callees[n.Callee] = true
		}
		return
	}
	switch n := (*node).(type) {
	case *ast.MemberNode:
		root, ok := n.Node.(*ast.IdentifierNode)
		prop, isStr := n.Property.(*ast.StringNode)
		if !ok || !isStr || v.declared[root.Value] {
			return
		}
		ns, ok := v.c.types[root.Value].(types.Map)
		if !ok {
			return
		}
		if _, extra := ns[types.Extra]; extra {
			return
		}
		if _, known := ns[prop.Value]; !known {
			v.unknown = append(v.unknown, unknownName{root.Value + "." + prop.Value, n.Property.Location()})
		}
	case *ast.IdentifierNode:
		name := n.Value
		if _, ok := v.c.types[name]; ok || v.declared[name] || v.c.fnNames[name] || v.callees[n] {
			return
		}
		if _, ok := builtin.Index[name]; ok || name == "$env" {
			return
		}
		v.unknown = append(v.unknown, unknownName{name, n.Location()})
	}
}

// suggest returns the valid name closest to name by edit distance, or ""
// when nothing is close enough to be a likely misspelling.
func suggest(name string, names []string) string {
	best, bestD := "", len(name)/2+2
	for _, n := range names {
		if d := distance(name, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// distance is the Levenshtein edit distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Names returns every name an expression may use, sorted: payment fields,
// features, limits and helper functions.
func Names(env Env) []string {
	c := newCompiler(ruleTypes(env.Features), nil)
	names := slices.Clone(c.names)
	for f := range c.fnNames {
		names = append(names, f+"()")
	}
	sort.Strings(names)
	return names
}
