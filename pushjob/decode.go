package pushjob

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Decode parses a job strictly and reports every structural problem at
// once as a *ValidationError: malformed JSON or trailing data (Field ""),
// and unknown fields, repeated keys and values of the wrong type (Field is
// the JSON path, such as "push.ios.colour" or "recipients[3]").
//
// Field names match exactly: encoding/json would take "Message_ID" for
// message_id, and a client with such a typo deserves to hear about it.
// Custom data objects ("data") are taken as they are.
//
// Decode does not Validate or Normalize; callers do both. The caller
// bounds the size of data.
func Decode(data []byte) (Job, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return Job{}, &ValidationError{Fields: []FieldError{{Rule: syntaxRule(err)}}}
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); err != io.EOF {
		return Job{}, &ValidationError{Fields: []FieldError{{
			Rule: fmt.Sprintf("malformed JSON: data after the job at byte %d", end),
		}}}
	}

	var fe fieldErrors
	if string(raw) == "null" {
		// walk lets null through for fields, as encoding/json does, but
		// a body of null is no job.
		fe.add("", "want a JSON object")
	} else {
		walk(&fe, "", raw, reflect.TypeFor[Job]())
	}
	if err := fe.err(); err != nil {
		return Job{}, err
	}
	var j Job
	if err := json.Unmarshal(raw, &j); err != nil {
		// walk accepts only what Unmarshal accepts, so this is a bug; say
		// so rather than pass on a half-decoded job.
		return Job{}, &ValidationError{Fields: []FieldError{{Rule: "undecodable job: " + err.Error()}}}
	}
	return j, nil
}

func syntaxRule(err error) string {
	var se *json.SyntaxError
	switch {
	case err == io.EOF:
		return "empty body: want a JSON object"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	}
	return "malformed JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

// walk checks that raw, the JSON at path, decodes into a value of type t,
// adding an error for each value that does not. It mirrors what
// encoding/json does with the types of this package, with the strictness
// described at Decode.
func walk(fe *fieldErrors, path string, raw json.RawMessage, t reflect.Type) {
	if string(raw) == "null" {
		// encoding/json leaves the value as it is; so does Decode.
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
			fe.add(path, typeRule(t, err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		walkObject(fe, path, raw, t)
	case reflect.Slice:
		walkArray(fe, path, raw, t.Elem())
	case reflect.Map:
		// Only custom data has a map type, and any JSON object will do.
		if raw[0] != '{' {
			fe.add(path, "want an object")
		}
	case reflect.Interface:
		// Any JSON value.
	default:
		if err := json.Unmarshal(raw, reflect.New(t).Interface()); err != nil {
			fe.add(path, typeRule(t, err))
		}
	}
}

func walkObject(fe *fieldErrors, path string, raw json.RawMessage, t reflect.Type) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		fe.add(path, "want an object")
		return
	}
	fields := jsonFields(t)
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		// raw is known to be well-formed, so these cannot fail.
		tok, err := dec.Token()
		if err != nil {
			return
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return
		}
		p := key
		if path != "" {
			p = path + "." + key
		}
		ft, ok := fields[key]
		switch {
		case !ok:
			fe.add(p, "unknown field")
		case seen[key]:
			// encoding/json would keep the last; a client sending two
			// values means one of them is a mistake.
			fe.add(p, "repeated key")
		default:
			seen[key] = true
			walk(fe, p, v, ft)
		}
	}
}

func walkArray(fe *fieldErrors, path string, raw json.RawMessage, elem reflect.Type) {
	if elem.Kind() != reflect.Struct && raw[0] == '[' {
		// Lists of ids are most of a large job: decoded whole, they cost
		// one Unmarshal rather than one per element, and only a list
		// that fails is walked element by element to say which.
		if json.Unmarshal(raw, reflect.New(reflect.SliceOf(elem)).Interface()) == nil {
			return
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		fe.add(path, "want an array")
		return
	}
	bad := 0
	for i := 0; dec.More(); i++ {
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return
		}
		var elemErrs fieldErrors
		walk(&elemErrs, path+"["+strconv.Itoa(i)+"]", v, elem)
		if len(elemErrs) == 0 {
			continue
		}
		if bad++; bad <= maxListErrors {
			*fe = append(*fe, elemErrs...)
		}
	}
	if bad > maxListErrors {
		fe.add(path, fmt.Sprintf("%d more invalid elements not listed", bad-maxListErrors))
	}
}

// jsonFields maps the JSON names of t's fields to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		m[name] = f.Type
	}
	return m
}

// typeRule says what a value of type t must look like.
func typeRule(t reflect.Type, err error) string {
	switch t {
	case reflect.TypeFor[Badge]():
		return `want a whole number or "Increment"`
	case reflect.TypeFor[time.Time]():
		return "want an RFC 3339 time, such as 2006-01-02T15:04:05Z"
	}
	switch t.Kind() {
	case reflect.String:
		return "want a string"
	case reflect.Bool:
		return "want true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "want a whole number in range"
	case reflect.Float32, reflect.Float64:
		return "want a number"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
