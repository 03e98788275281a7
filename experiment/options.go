package experiment

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// SetModelOption sets the field name of the run's model configuration
// (model_config in config.json) to value, given as on the command line:
// a JSON value (a number, true, false, a quoted string) or, where it is
// not JSON, a bare string ("cycle"). Call Resolve afterwards: it decodes
// the configuration strictly and validates it, so a value of the wrong
// type or out of range is an error there.
//
// A name the model's configuration does not have is an error naming the
// model and listing its options: a mask given to a model without masks,
// say, is refused, never ignored.
func (rc *RunConfig) SetModelOption(name, value string) error {
	b, err := json.Marshal(rc.ModelConfig)
	if err != nil {
		return fmt.Errorf("model_config: %w", err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return fmt.Errorf("model_config: %w", err)
	}
	if _, ok := fields[name]; !ok {
		names := make([]string, 0, len(fields))
		for k := range fields {
			names = append(names, k)
		}
		sort.Strings(names)
		return fmt.Errorf("model %s has no option %q (its options: %s)", rc.Model, name, strings.Join(names, ", "))
	}
	v := json.RawMessage(value)
	if !json.Valid(v) {
		if v, err = json.Marshal(value); err != nil {
			return fmt.Errorf("model option %s: %w", name, err)
		}
	}
	fields[name] = v
	b, err = json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("model option %s: %w", name, err)
	}
	rc.ModelConfig = rawConfig(b)
	return nil
}

// rawConfig is a model configuration held as JSON until Resolve decodes
// it through the model's registry entry.
type rawConfig json.RawMessage

// Validate implements model.Config; Resolve replaces a rawConfig by the
// decoded configuration, which it validates.
func (rawConfig) Validate() error { return nil }

// MarshalJSON returns the JSON held.
func (r rawConfig) MarshalJSON() ([]byte, error) { return json.RawMessage(r), nil }
