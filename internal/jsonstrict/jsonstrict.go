// Package jsonstrict decodes JSON that must match its Go type exactly:
// configuration files, where a misspelt field should be an error rather
// than a default silently taken.
package jsonstrict

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Decode unmarshals b into v, rejecting unknown fields and trailing
// data.
func Decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the object")
	}
	return nil
}
