package serve

import (
	"encoding/json"

	"github.com/flowood/flowood/internal/jsonfloat"
)

// A diverged model scores NaN, and a threshold below which no
// in-distribution score falls is -Inf; plain JSON numbers hold neither
// (encoding/json refuses them, which would cut a response short). The
// responses therefore write NaN and the infinities as the strings "NaN",
// "+Inf" and "-Inf" (package jsonfloat), and read them back.

type scoreResponseJSON struct {
	plainScoreResponse
	Threshold  jsonfloat.Float            `json:"threshold"`
	Thresholds map[string]jsonfloat.Float `json:"thresholds"`
}

type plainScoreResponse ScoreResponse

// MarshalJSON implements json.Marshaler.
func (r ScoreResponse) MarshalJSON() ([]byte, error) {
	return json.Marshal(scoreResponseJSON{plainScoreResponse(r), jsonfloat.Float(r.Threshold), toJSON(r.Thresholds)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *ScoreResponse) UnmarshalJSON(b []byte) error {
	var v scoreResponseJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = ScoreResponse(v.plainScoreResponse)
	r.Threshold, r.Thresholds = float64(v.Threshold), fromJSON(v.Thresholds)
	return nil
}

type imageResultJSON struct {
	plainImageResult
	LogLikelihood jsonfloat.Float            `json:"log_likelihood"`
	BitsPerDim    jsonfloat.Float            `json:"bits_per_dim"`
	Scores        map[string]jsonfloat.Float `json:"scores"`
}

type plainImageResult ImageResult

// MarshalJSON implements json.Marshaler.
func (r ImageResult) MarshalJSON() ([]byte, error) {
	return json.Marshal(imageResultJSON{plainImageResult(r), jsonfloat.Float(r.LogLikelihood), jsonfloat.Float(r.BitsPerDim), toJSON(r.Scores)})
}

// UnmarshalJSON implements json.Unmarshaler.
func (r *ImageResult) UnmarshalJSON(b []byte) error {
	var v imageResultJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = ImageResult(v.plainImageResult)
	r.LogLikelihood, r.BitsPerDim, r.Scores = float64(v.LogLikelihood), float64(v.BitsPerDim), fromJSON(v.Scores)
	return nil
}

func toJSON(m map[string]float64) map[string]jsonfloat.Float {
	if m == nil {
		return nil
	}
	out := make(map[string]jsonfloat.Float, len(m))
	for k, v := range m {
		out[k] = jsonfloat.Float(v)
	}
	return out
}

func fromJSON(m map[string]jsonfloat.Float) map[string]float64 {
	if m == nil {
		return nil
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[k] = float64(v)
	}
	return out
}
