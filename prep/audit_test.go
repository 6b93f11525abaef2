package prep_test

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/gonormflows/flows/model"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distmv"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
	"github.com/gonormflows/flows/prep"
)

// messy returns 500 rows of two normal columns, then applies edit.
func messy(edit func(x *mat.Dense)) *mat.Dense {
	rng := flows.NewKey(31).Rand()
	x := mat.NewDense(500, 2, nil)
	for i := range 500 {
		x.SetRow(i, []float64{rng.NormFloat64(), 2 + 3*rng.NormFloat64()})
	}
	if edit != nil {
		edit(x)
	}
	return x
}

// TestAuditMessages checks each messy-data case of the quality issue: the
// finding and the message it produces, naming the column or the rows.
func TestAuditMessages(t *testing.T) {
	names := []string{"a", "b"}
	for _, tc := range []struct {
		name  string
		x     *mat.Dense
		issue prep.Issue
		want  string
	}{
		{"constant", messy(func(x *mat.Dense) {
			for i := range 500 {
				x.Set(i, 1, 7)
			}
		}), prep.Constant, `column "b" is constant (every row is 7): it has no density; drop it`},
		{"near-constant", messy(func(x *mat.Dense) {
			for i := range 500 {
				x.Set(i, 0, 1000+float64(i%3)*1e-10)
			}
		}), prep.NearConstant, `column "a" is constant up to rounding (1000 to 1000.0000000002)`},
		{"outlier", messy(func(x *mat.Dense) { x.SetRow(123, []float64{1e6, -1e6}) }), prep.Outliers,
			`column "a": 1 row lies more than 50 robust scales`},
		{"integers", messy(func(x *mat.Dense) {
			for i := range 500 {
				x.Set(i, 1, float64(i%2))
			}
		}), prep.Integers, `column "b" holds integers only (2 values, 0 to 1)`},
		{"few values", messy(func(x *mat.Dense) {
			for i := range 500 {
				x.Set(i, 0, 0.5*float64(i%3))
			}
		}), prep.FewValues, `column "a" takes only 3 distinct values (0 to 1)`},
		{"duplicates", messy(func(x *mat.Dense) {
			for i := 250; i < 500; i++ {
				x.SetRow(i, x.RawRowView(i-250))
			}
		}), prep.Duplicates, "250 of 500 rows (50.0%) repeat an earlier row exactly (rows 250, 251, 252, 253, 254, and 245 more)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *prep.Finding
			for _, f := range prep.Audit(tc.x, names) {
				if f.Issue == tc.issue {
					got = &f
					break
				}
			}
			if got == nil || !strings.Contains(got.Message, tc.want) {
				t.Fatalf("findings %+v, want a %v one saying %q", prep.Audit(tc.x, names), tc.issue, tc.want)
			}
			if tc.issue == prep.Outliers && (got.Count != 1 || got.Rows[0] != 123 || !strings.Contains(got.Message, "row 123 (1e+06)")) {
				t.Errorf("outlier finding %+v, want row 123", got)
			}
			if got.Fatal() != (tc.issue == prep.Constant || tc.issue == prep.NearConstant) {
				t.Errorf("%v: Fatal() = %v", tc.issue, got.Fatal())
			}
		})
	}
	if f := prep.Audit(messy(nil), names); len(f) != 0 {
		t.Errorf("clean data: findings %+v", f)
	}
}

// TestAuditCollinear: a column that is a linear function of earlier ones,
// exactly or after rounding to six digits, is found with the columns it is
// made of; a column only strongly correlated with them (R² ≈ 0.9999) is not.
func TestAuditCollinear(t *testing.T) {
	rng := flows.NewKey(32).Rand()
	round6 := func(v float64) float64 { f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64); return f }
	for _, tc := range []struct {
		name string
		c    func(a, b, u, noise float64) float64
		want string
	}{
		{"exact", func(a, b, u, _ float64) float64 { return 2*a - b + 1 }, `column "c" is a linear function of columns "a", "b" up to rounding`},
		{"rounded", func(a, b, u, _ float64) float64 { return round6(1e3*a - 0.5*b) }, `column "c" is a linear function of columns "a", "b"`},
		{"correlated", func(a, b, u, noise float64) float64 { return a + b + 0.01*noise }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := mat.NewDense(2000, 4, nil)
			for i := range 2000 {
				a, b, u := rng.NormFloat64(), 5+2*rng.NormFloat64(), rng.NormFloat64()
				x.SetRow(i, []float64{a, 7, b, tc.c(a, b, u, rng.NormFloat64())}) // column 1 constant: left out
			}
			var got []prep.Finding
			for _, f := range prep.Audit(x, []string{"a", "k", "b", "c"}) {
				if f.Issue == prep.Collinear {
					got = append(got, f)
				}
			}
			switch {
			case tc.want == "" && len(got) != 0:
				t.Errorf("findings %+v, want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0].Message, tc.want) || got[0].Column != 3 || len(got[0].Of) != 2):
				t.Errorf("findings %+v, want one saying %q", got, tc.want)
			case tc.want != "" && got[0].Fatal():
				t.Error("a collinear column is fatal; want a warning")
			}
		})
	}
}

// TestRobustScalingOutlier: one row at (10⁶, −10⁶) among 500 stretches a
// standardisation by moments to a scale of ~4.5·10⁴, and the other rows'
// validation NLL with it; the default (robust) scaling leaves it out, and
// the fit is as good as without the row.
func TestRobustScalingOutlier(t *testing.T) {
	x := messy(func(x *mat.Dense) { x.SetRow(0, []float64{1e6, -1e6}) })
	_, scale, err := prep.StandardizeFrom(x)
	if err != nil {
		t.Fatal(err)
	}
	_, robust, err := prep.RobustStandardizeFrom(x)
	if err != nil {
		t.Fatal(err)
	}
	if scale[0] < 1e4 || robust[0] > 1.5 || robust[1] > 4.5 {
		t.Errorf("moments' scale %v, robust %v", scale, robust)
	}
	clean := x.Slice(1, 500, 0, 2).(*mat.Dense)
	nll := func(s model.Scaling) float64 {
		m, err := model.New(model.Config{Kind: model.KindMAF, Layers: 2, Hidden: []int{16}, Scaling: s}, x, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Fit(x, nil, optim.FitConfig{Epochs: 30}); err != nil {
			t.Fatal(err)
		}
		v, _ := optim.NLLValue(m.Dist, m.Params, clean, nil)
		return v
	}
	if r, mo := nll(model.ScalingRobust), nll(model.ScalingMoments); !(r < 4.5 && mo > r+2) {
		t.Errorf("NLL of the other rows: robust %.3f, moments %.3f; want robust near the truth (%.2f) and moments far worse",
			r, mo, 0.5*math.Log(2*math.Pi*math.E)*2+math.Log(3))
	}
}

// TestGaussianNLL compares the baseline with gonum's normal distribution.
func TestGaussianNLL(t *testing.T) {
	x := messy(nil)
	train, val := x.Slice(0, 400, 0, 2).(*mat.Dense), x.Slice(400, 500, 0, 2).(*mat.Dense)
	mean := []float64{stat.Mean(mat.Col(nil, 0, train), nil), stat.Mean(mat.Col(nil, 1, train), nil)}
	var cov mat.SymDense
	stat.CovarianceMatrix(&cov, train, nil)
	cov.ScaleSym(399.0/400, &cov)
	g, _ := distmv.NewNormal(mean, &cov, nil)
	want := 0.0
	for i := range 100 {
		want -= g.LogProb(val.RawRowView(i)) / 100
	}
	if got := prep.GaussianNLL(train, val); math.Abs(got-want) > 1e-10 {
		t.Errorf("GaussianNLL = %.12f, want %.12f", got, want)
	}
	// A constant column: the ridge keeps it finite.
	c := messy(func(x *mat.Dense) {
		for i := range 500 {
			x.Set(i, 1, 3)
		}
	})
	if v := prep.GaussianNLL(c, c); math.IsNaN(v) || math.IsInf(v, 0) {
		t.Errorf("constant column: %v", v)
	}
}
