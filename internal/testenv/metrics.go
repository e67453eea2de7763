package testenv

import "sigs.k8s.io/controller-runtime/pkg/metrics"

// Counter sums the values of the counter family name, in controller-runtime's metrics registry, whose
// label has the given value.
func Counter(name, label, value string) float64 {
	families, err := metrics.Registry.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
