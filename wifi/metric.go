package wifi

import (
	"fmt"
	"math"
)

// DefaultRouteMetric is the Wi-Fi lease's route metric when [wifi]
// sets none: NetworkManager's for Wi-Fi, so that a wired uplink (metric
// 0 unless its route_metric says otherwise, 100 in the examples) carries
// the traffic and is asked for DNS first whenever both are up.
const DefaultRouteMetric = 600

// RouteMetric is [wifi] route_metric: the metric of the default route
// of the Wi-Fi link's lease, and its DNS servers' place in the merged
// resolv.conf (lowest first).
type RouteMetric int64

// Validate is called by the config file's walk at the key's own line.
func (m RouteMetric) Validate() error {
	if m < 0 || m > math.MaxUint32 {
		return &FieldError{"", fmt.Sprintf("%d is out of range 0..4294967295", int64(m))}
	}
	return nil
}

// Metric is route_metric, or DefaultRouteMetric when it is absent
// (or invalid, which Validate refuses).
func (c Config) Metric() uint32 {
	if c.RouteMetric == nil || c.RouteMetric.Validate() != nil {
		return DefaultRouteMetric
	}
	return uint32(*c.RouteMetric)
}
