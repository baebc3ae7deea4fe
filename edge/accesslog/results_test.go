package accesslog

import "testing"

// TestResultTableBlame: every failure is blamed on the side a user would
// expect, so that `edgegate logs` never sends an operator to the origin for
// a viewer's own fault.
func TestResultTableBlame(t *testing.T) {
	for _, tc := range []struct {
		rt      ResultType
		side    Side
		status  int
		finding string
	}{
		{ResultClientCommError, SideViewer, 0, FindingViewerHangups},
		{ResultClientHungUpRequest, SideViewer, 0, FindingViewerHangups},
		{ResultInvalidRequest, SideViewer, 400, ""},
		{ResultInvalidRequestHeader, SideViewer, 400, ""},
		{ResultInvalidRequestMethod, SideViewer, 403, ""},
		{ResultOriginCommError, SideOrigin, 504, FindingOriginTimeout},
		{ResultOriginConnectError, SideOrigin, 502, FindingOriginConnect},
		{ResultOriginReadError, SideOrigin, 502, FindingOriginRead},
		{ResultOriginDnsError, SideOrigin, 502, FindingOriginDNS},
		{ResultHit, SideNone, 0, ""},
		{ResultStaleHitOriginConnectError, SideNone, 0, ""},
		{ResultStaleHitOriginCommError, SideNone, 0, ""},
		{ResultStaleHitOriginError, SideNone, 0, ""},
	} {
		ri, ok := Info(tc.rt)
		if !ok || ri.Side != tc.side || ri.Status != tc.status || ri.Finding != tc.finding {
			t.Errorf("%s: %+v, want side %s status %d finding %q", tc.rt, ri, tc.side, tc.status, tc.finding)
		}
	}
	for _, rt := range ResultTypes() {
		ri := rt.Info()
		if ri.Side == SideOrigin && (ri.Finding == "" || ri.Advice == "" || ri.Status == 0) {
			t.Errorf("%s: an origin failure needs a status, a finding and advice: %+v", rt, ri)
		}
	}
	if _, ok := Info("SomethingNew"); ok {
		t.Error("an undocumented value has a row")
	}
}

func TestKnownResultAllocatesNothing(t *testing.T) {
	b := []byte("OriginReadError")
	if n := testing.AllocsPerRun(100, func() { _, _ = knownResult(b) }); n != 0 {
		t.Errorf("knownResult allocates %v times", n)
	}
}
