package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pushd/pushd/internal/content"
	"github.com/pushd/pushd/pushjob"
)

// decoder fills a Config from a YAML node tree. It walks the tree itself,
// rather than leaving it to yaml's Decode with KnownFields, so that every
// problem names its key path (yaml names only the Go type), all of them are
// found in one pass, and ${VAR} is expanded where it belongs.
type decoder struct {
	env      map[string]string
	problems []Problem
	// lines maps key paths to the line of their value, so that problems
	// found later, in validation, can point into the file too.
	lines map[string]int
}

// defaulter is a type whose new elements start from defaults rather than
// from zero.
type defaulter interface{ setDefaults() }

var (
	durationType = reflect.TypeFor[time.Duration]()
	badgeType    = reflect.TypeFor[pushjob.Badge]()
	defaultsType = reflect.TypeFor[content.Defaults]()
)

func (d *decoder) problem(key string, n *yaml.Node, format string, args ...any) {
	d.problems = append(d.problems, Problem{Key: key, Rule: fmt.Sprintf(format, args...), Line: n.Line})
}

// decode decodes n into v, the value at key path key. expand says whether
// ${VAR} is expanded in strings.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, key string, expand bool) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	d.lines[key] = n.Line
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// "key:" with no value leaves the key as if absent.
		return
	}
	t := v.Type()
	switch {
	case t == durationType:
		d.duration(n, v, key)
		return
	case t == badgeType:
		d.badge(n, v, key)
		return
	case t == defaultsType:
		// Content templates carry their own ${...} variables.
		expand = false
	}

	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		d.decode(n, v.Elem(), key, expand)
	case reflect.Struct:
		d.structure(n, v, key, expand)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.problem(key, n, "must be a list")
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, e := range n.Content {
			if def, ok := s.Index(i).Addr().Interface().(defaulter); ok {
				def.setDefaults()
			}
			d.decode(e, s.Index(i), fmt.Sprintf("%s[%d]", key, i), expand)
		}
		v.Set(s)
	case reflect.Map:
		d.mapping(n, v, key, expand)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.problem(key, n, "must be a string")
			return
		}
		s := n.Value
		if expand {
			var err error
			if s, err = expandEnv(s, d.env); err != nil {
				d.problem(key, n, "%v", err)
				return
			}
		}
		v.SetString(s)
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.problem(key, n, "must be a whole number")
			return
		}
		v.SetInt(int64(i))
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.problem(key, n, "must be true or false")
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.problem(key, n, "must be true or false")
			return
		}
		v.SetBool(b)
	case reflect.Interface:
		// Free-form values: custom data.
		var x any
		if err := n.Decode(&x); err != nil {
			d.problem(key, n, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		// A Config field of a kind this decoder does not know: a bug here,
		// not in the file.
		panic(fmt.Sprintf("config: cannot decode %s into %s", key, t))
	}
}

// structure decodes a mapping into a struct, field by yaml key.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, key string, expand bool) {
	if n.Kind != yaml.MappingNode {
		d.problem(key, n, "must be a mapping")
		return
	}
	fields := make(map[string]int)
	t := v.Type()
	for i := range t.NumField() {
		if name, ok := fieldName(t.Field(i)); ok {
			fields[name] = i
		}
	}
	for _, p := range d.pairs(n, key) {
		name := p.key.Value
		if key == "" && strings.HasPrefix(name, "x-") {
			// Extension keys, as in Compose files: a place for anchors.
			continue
		}
		i, ok := fields[name]
		if !ok {
			d.problem(join(key, name), p.key, "unknown key%s", suggest(name, fields))
			continue
		}
		d.decode(p.value, v.Field(i), join(key, name), expand)
	}
}

// mapping decodes a mapping into a map with string keys.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, key string, expand bool) {
	if n.Kind != yaml.MappingNode {
		d.problem(key, n, "must be a mapping")
		return
	}
	t := v.Type()
	m := reflect.MakeMap(t)
	for _, p := range d.pairs(n, key) {
		e := reflect.New(t.Elem()).Elem()
		k := join(key, p.key.Value)
		d.decode(p.value, e, k, expand)
		m.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(t.Key()), e)
	}
	// A map key replaces the default map rather than merging into it: the
	// file says which queues there are.
	v.Set(m)
}

type pair struct{ key, value *yaml.Node }

// pairs lists a mapping's key-value pairs, with YAML merge keys ("<<")
// flattened: merged pairs come first, so that the mapping's own keys win,
// and are left out when the mapping has the key itself. A key given twice
// in one mapping is a problem.
func (d *decoder) pairs(n *yaml.Node, key string) []pair {
	var own, merged []pair
	seen := make(map[string]*yaml.Node)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val, key)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.problem(key, k, "keys must be strings")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.problem(join(key, k.Value), k, "duplicate key (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		own = append(own, pair{k, val})
	}
	var out []pair
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key
			out = append(out, p)
		}
	}
	return append(out, own...)
}

// merge returns the pairs a merge key's value brings: one mapping or a list
// of them, earlier ones winning.
func (d *decoder) merge(n *yaml.Node, key string) []pair {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		return d.pairs(n, key)
	case yaml.SequenceNode:
		var out []pair
		for _, e := range n.Content {
			out = append(out, d.merge(e, key)...)
		}
		return out
	}
	d.problem(key, n, "a merge (<<) must name a mapping or a list of them")
	return nil
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, key string) {
	dur, err := time.ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" || err != nil {
		d.problem(key, n, "must be a duration such as 30s or 1m30s")
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) badge(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int":
			if i, err := strconv.Atoi(n.Value); err == nil {
				v.Set(reflect.ValueOf(pushjob.Badge{Value: i}))
				return
			}
		case "!!str":
			if n.Value == "Increment" {
				v.Set(reflect.ValueOf(pushjob.Badge{Increment: true}))
				return
			}
		}
	}
	d.problem(key, n, `must be a whole number or "Increment"`)
}

// fieldName is the yaml key of a struct field: its yaml tag, or, as yaml
// does by default, its lower-cased name. ok is false for fields yaml skips.
func fieldName(f reflect.StructField) (name string, ok bool) {
	if !f.IsExported() {
		return "", false
	}
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch tag {
	case "-":
		return "", false
	case "":
		return strings.ToLower(f.Name), true
	}
	return tag, true
}

// join appends a mapping key to a key path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest names a known key close to an unknown one: a typo's likely fix.
// Close is at most two edits (fewer than the known key's length, so that
// short keys are not offered for anything), or one spelling out the other
// (address for addr).
func suggest(name string, known map[string]int) string {
	best, bestDist := "", 0
	for k := range known {
		dist := editDistance(name, k)
		abbrev := min(len(k), len(name)) >= 3 && (strings.HasPrefix(name, k) || strings.HasPrefix(k, name))
		if dist > min(2, len(k)-1) && !abbrev {
			continue
		}
		if best == "" || dist < bestDist || dist == bestDist && k < best {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes; keys
// are ASCII.
func editDistance(a, b string) int {
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

// expandEnv replaces ${NAME} and ${NAME:-fallback} in s (see the package
// documentation).
func expandEnv(s string, env map[string]string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			// $${ is a literal ${.
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", errors.New("unterminated ${ (write $${ for a literal ${)")
		}
		expr := s[i+2 : i+end]
		s = s[i+end+1:]
		name, fallback, hasFallback := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("${%s}: %q is not an environment variable name", expr, name)
		}
		val, set := env[name]
		switch {
		case hasFallback && val == "":
			val = fallback
		case !set:
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(val)
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
