package apitype

// AudioModeRequest is the body of POST /api/v1/audio/cards/{name}/mode.
type AudioModeRequest struct {
	Mode string `json:"mode"`
}

// AudioDefaultRequest is the body of POST /api/v1/audio/default.
type AudioDefaultRequest struct {
	Kind string `json:"kind"` // sink or source
	Name string `json:"name"`
}

// AudioDefaultResult answers POST /api/v1/audio/default.
type AudioDefaultResult struct {
	FallbackSink   string `json:"fallback_sink"`
	FallbackSource string `json:"fallback_source"`
}

// AudioVolumeRequest is the body of POST /api/v1/audio/volume.
type AudioVolumeRequest struct {
	Device  string   `json:"device"`
	Percent *float64 `json:"percent,omitempty"`
	Mute    *bool    `json:"mute,omitempty"`
}

// AudioTestRequest is the body of POST /api/v1/audio/test.
type AudioTestRequest struct {
	Sink      string  `json:"sink,omitempty"`
	Source    string  `json:"source,omitempty"`
	Seconds   float64 `json:"seconds,omitempty"`
	Play      *bool   `json:"play,omitempty"`
	Frequency float64 `json:"frequency,omitempty"`
}
