package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// secretType is what the types that hold a secret (secret.Secret,
// storage.DSN) have in common: Reveal gives the value, String hides it.
var secretType = reflect.TypeFor[interface {
	fmt.Stringer
	Reveal() string
}]()

// Redacted returns the effective configuration as YAML for logging at
// start. Secrets show as their types print them: API tokens, the Redis
// password and certificate passwords (secret.Secret) as "[redacted]", the
// PostgreSQL DSN (storage.DSN) with its password as "xxxxx". Credentials
// are files, so only their paths appear.
func (c *Config) Redacted() string {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(toNode(reflect.ValueOf(c).Elem())); err != nil {
		// toNode builds only nodes yaml can write.
		return fmt.Sprintf("config: cannot show: %v", err)
	}
	enc.Close()
	return b.String()
}

// toNode encodes v as a YAML node with the keys Load reads: the inverse of
// decoder.decode.
func toNode(v reflect.Value) *yaml.Node {
	t := v.Type()
	switch {
	case t.Kind() == reflect.String && t.Implements(secretType):
		return scalar("!!str", v.Interface().(fmt.Stringer).String())
	case t == durationType:
		return scalar("!!str", fmt.Sprint(v.Interface()))
	case t == badgeType:
		if v.FieldByName("Increment").Bool() {
			return scalar("!!str", "Increment")
		}
		return scalar("!!int", strconv.FormatInt(v.FieldByName("Value").Int(), 10))
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return scalar("!!null", "null")
		}
		if t.Kind() == reflect.Interface {
			n := new(yaml.Node)
			if err := n.Encode(v.Interface()); err != nil {
				return scalar("!!str", fmt.Sprint(v.Interface()))
			}
			return n
		}
		return toNode(v.Elem())
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i := range t.NumField() {
			if name, ok := fieldName(t.Field(i)); ok {
				n.Content = append(n.Content, scalar("!!str", name), toNode(v.Field(i)))
			}
		}
		return n
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if t.Elem().Kind() == reflect.String {
			n.Style = yaml.FlowStyle // [a, b]: short lists of tokens
		}
		for i := range v.Len() {
			n.Content = append(n.Content, toNode(v.Index(i)))
		}
		return n
	case reflect.Map:
		if v.IsNil() {
			return scalar("!!null", "null")
		}
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			return strings.Compare(a.String(), b.String())
		})
		for _, k := range keys {
			n.Content = append(n.Content, scalar("!!str", k.String()), toNode(v.MapIndex(k)))
		}
		return n
	case reflect.String:
		return scalar("!!str", v.String())
	case reflect.Int:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10))
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool()))
	}
	return scalar("!!str", fmt.Sprint(v.Interface()))
}

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}
