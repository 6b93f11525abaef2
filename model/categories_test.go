package model

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/gonormflows/flows"
)

// TestCategories: the table's probabilities sum to one over every
// combination, match the training frequencies up to the pseudo-row,
// samples follow them, and an unseen level is an error naming it.
func TestCategories(t *testing.T) {
	var cats []string
	species := []string{"setosa", "versicolor", "virginica"}
	sizes := []string{"small", "large"}
	for i := range 60 {
		cats = append(cats, species[i%3], sizes[min(i%3, 1)])
	}
	c, err := NewCategories([]string{"Species", "Size"}, cats)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Levels[0], species) || !slices.Equal(c.Levels[1], []string{"large", "small"}) || c.Width() != 5 || c.Rows != 60 {
		t.Fatalf("levels %q, width %d, rows %d", c.Levels, c.Width(), c.Rows)
	}
	var all []string
	for _, s := range species {
		for _, z := range c.Levels[1] {
			all = append(all, s, z)
		}
	}
	onehot, logp, err := c.Encode(all)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, v := range logp {
		sum += math.Exp(v)
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Errorf("probabilities sum to %v", sum)
	}
	// setosa/small: 20 of 60 rows, K = 6.
	if want := math.Log((20 + 1.0/6) / 61); math.Abs(logp[1]-want) > 1e-12 {
		t.Errorf("log p(setosa, small) = %v, want %v", logp[1], want)
	}
	if r, cnt := onehot.RawRowView(1), 0.0; true {
		for _, v := range r {
			cnt += v
		}
		if cnt != 2 || r[0] != 1 || r[4] != 1 {
			t.Errorf("one-hot of setosa/small: %v", r)
		}
	}
	s := c.Sample(flows.NewKey(1), 3000)
	n := 0
	for i := 0; i < len(s); i += 2 {
		if s[i] == "versicolor" && s[i+1] == "large" {
			n++
		}
	}
	if n < 900 || n > 1100 {
		t.Errorf("%d of 3000 samples are versicolor/large; want about 1000", n)
	}
	if !slices.Equal(s, c.Sample(flows.NewKey(1), 3000)) {
		t.Errorf("the same key gave other samples")
	}
	_, _, err = c.Encode([]string{"setosa", "small", "setosa", "medium"})
	var ue *UnknownLevelError
	if !errors.As(err, &ue) || ue.Row != 1 || ue.Column != "Size" || ue.Level != "medium" {
		t.Errorf("unseen level: %v", err)
	}
	for name, damage := range map[string]func(*Categories){
		"count":    func(d *Categories) { d.Counts[0]++ },
		"level":    func(d *Categories) { d.Combos[1] = 7 },
		"unsorted": func(d *Categories) { d.Levels[0][0], d.Levels[0][1] = d.Levels[0][1], d.Levels[0][0] },
		"repeated": func(d *Categories) { d.Combos[2], d.Combos[3] = d.Combos[0], d.Combos[1] },
	} {
		d, _ := NewCategories(c.Names, cats)
		damage(d)
		if d.check() == nil {
			t.Errorf("damage %s: check passes", name)
		}
	}
}
