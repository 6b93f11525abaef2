package enum

import "testing"

type color int

var colors = Names[color]{Type: "color", What: "color", List: []string{"red", "Green"}, Fold: true}

type mode int

var modes = Names[mode]{Type: "mode", What: "mode", List: []string{"default", "fast", "slow"}}

func TestNames(t *testing.T) {
	if got := colors.String(1); got != "Green" {
		t.Errorf("String(1) = %q", got)
	}
	if got := colors.String(5); got != "color(5)" {
		t.Errorf("String(5) = %q", got)
	}
	if got := colors.String(-1); got != "color(-1)" {
		t.Errorf("String(-1) = %q", got)
	}
	if b, err := colors.MarshalText(0); err != nil || string(b) != "red" {
		t.Errorf("MarshalText(0) = %q, %v", b, err)
	}
	if _, err := colors.MarshalText(2); err == nil || err.Error() != "flows: unknown color 2" {
		t.Errorf("MarshalText(2): %v", err)
	}
	var c color
	if err := colors.UnmarshalText(&c, []byte("GREEN")); err != nil || c != 1 {
		t.Errorf("UnmarshalText(GREEN) = %d, %v", c, err)
	}
	if err := colors.UnmarshalText(&c, []byte("blue")); err == nil || err.Error() != `flows: unknown color "blue"; want one of red, Green` {
		t.Errorf("UnmarshalText(blue): %v", err)
	}
	var m mode
	if err := modes.UnmarshalText(&m, []byte("slow")); err != nil || m != 2 {
		t.Errorf("UnmarshalText(slow) = %d, %v", m, err)
	}
	if err := modes.UnmarshalText(&m, []byte("FAST")); err == nil || err.Error() != `flows: unknown mode "FAST"; want fast, slow or default` {
		t.Errorf("UnmarshalText(FAST) without Fold: %v", err)
	}
	for v := range mode(3) {
		b, err := modes.MarshalText(v)
		var back mode
		if err != nil || modes.UnmarshalText(&back, b) != nil || back != v {
			t.Errorf("round trip of %d: %q, %v, %d", v, b, err, back)
		}
	}
}
