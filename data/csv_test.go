package data

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestReadCSVHEPMASSFormat(t *testing.T) {
	// The layout of HEPMASS's 1000_train.csv: a header, then the label and
	// 28 numbers per row.
	var b strings.Builder
	b.WriteString("# label")
	for i := range 27 {
		fmt.Fprintf(&b, ", f%d", i)
	}
	b.WriteString(", mass\n")
	for r := range 4 {
		fmt.Fprintf(&b, "%d.000000", r%2)
		for j := range 28 {
			fmt.Fprintf(&b, ",%.6f", float64(r)-float64(j)/7)
		}
		b.WriteString("\r\n")
	}
	b.WriteString("\n")
	tab, err := ReadCSV(strings.NewReader(b.String()), "1000_train.csv", CSVOptions{Header: true, Label: true})
	if err != nil {
		t.Fatal(err)
	}
	if tab.N != 4 || tab.D != 28 || tab.Validate() != nil || !reflect.DeepEqual(tab.Labels, []uint8{0, 1, 0, 1}) {
		t.Fatalf("got %dx%d labels %v", tab.N, tab.D, tab.Labels)
	}
	if got, want := tab.Row(2)[7], math.Round((2-7.0/7)*1e6)/1e6; got != want {
		t.Errorf("row 2 column 7 = %v, want %v", got, want)
	}
}

func TestReadCSVOptions(t *testing.T) {
	tab, err := ReadCSV(strings.NewReader("  1 2\t3 \n\n4 5 6\n"), "x", CSVOptions{Whitespace: true, Label: true, LabelColumn: 2})
	if err != nil || !reflect.DeepEqual(tab.X, []float64{1, 2, 4, 5}) || !reflect.DeepEqual(tab.Labels, []uint8{3, 6}) || tab.D != 2 {
		t.Errorf("whitespace: %+v, %v", tab, err)
	}
	tab, err = ReadCSV(strings.NewReader("a;b\n1.5; -2e3\n"), "x", CSVOptions{Comma: ';', Header: true})
	if err != nil || !reflect.DeepEqual(tab.X, []float64{1.5, -2000}) || tab.Labels != nil {
		t.Errorf("semicolon: %+v, %v", tab, err)
	}
	tab, err = ReadCSV(strings.NewReader(""), "x", CSVOptions{})
	if err != nil || tab.N != 0 || tab.D != 0 || tab.Validate() != nil {
		t.Errorf("empty: %+v, %v", tab, err)
	}
}

func TestReadCSVErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		opts       CSVOptions
		want       string
	}{
		{"nan", "1,2\n3,NaN\n", CSVOptions{}, "line 2, column 2: value \"NaN\" is not finite"},
		{"inf", "h\n1,2\n-Inf,2\n", CSVOptions{Header: true}, "line 3, column 1: value \"-Inf\" is not finite"},
		{"overflow", "1e400,2\n", CSVOptions{}, "line 1, column 1: \"1e400\" is not a number"},
		{"garbage", "1,2\n\n3,x\n", CSVOptions{}, "line 3, column 2: \"x\" is not a number"},
		{"empty cell", "1,,2\n", CSVOptions{}, "line 1, column 2"},
		{"ragged", "1,2\n3\n", CSVOptions{}, "line 2 has 1 columns, want 2"},
		{"label not integer", "1.5,2\n", CSVOptions{Label: true}, "label \"1.5\""},
		{"label range", "256,2\n", CSVOptions{Label: true}, "label \"256\""},
		{"label column missing", "1,2\n", CSVOptions{Label: true, LabelColumn: 2}, "no label column 3"},
		{"too many rows", "1\n2\n3\n", CSVOptions{MaxRows: 2}, "more than 2 rows (line 3)"},
		{"long line", strings.Repeat("1,", maxCSVLine), CSVOptions{}, "longer than"},
	} {
		_, err := ReadCSV(strings.NewReader(tc.data), "bad.csv", tc.opts)
		if err == nil || !strings.HasPrefix(err.Error(), "reading bad.csv: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming bad.csv and containing %q", tc.name, err, tc.want)
		}
	}
}

func miniBooNEText(nsig, nbg int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "    %d    %d\n", nsig, nbg)
	for r := range nsig + nbg {
		for j := range 50 {
			fmt.Fprintf(&b, " %.5E", float64(r*50+j)/3)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestReadMiniBooNERaw(t *testing.T) {
	tab, err := ReadMiniBooNERaw(strings.NewReader(miniBooNEText(3, 2)), "MiniBooNE_PID.txt")
	if err != nil {
		t.Fatal(err)
	}
	if tab.N != 5 || tab.D != 50 || tab.Validate() != nil || !reflect.DeepEqual(tab.Labels, []uint8{1, 1, 1, 0, 0}) {
		t.Fatalf("got %dx%d labels %v", tab.N, tab.D, tab.Labels)
	}
	if got := tab.Row(4)[3]; math.Abs(got-float64(4*50+3)/3) > 1e-3 {
		t.Errorf("row 4 column 3 = %v", got)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"empty", "", "empty MiniBooNE file"},
		{"bad counts", "3\n", "nsignal nbackground"},
		{"negative count", "-1 2\n", "bad event count"},
		{"huge count", "99999999999 1\n", "bad event count"},
		{"too few rows", miniBooNEText(3, 2)[:len(miniBooNEText(3, 2))-200], ""},
		{"missing rows", strings.Replace(miniBooNEText(3, 2), "3    2", "3    3", 1), "promises 3 signal and 3 background events, file has 5 rows"},
		{"extra rows", strings.Replace(miniBooNEText(3, 2), "3    2", "3    1", 1), "more than 4 rows"},
		{"wrong width", "1 0\n1 2 3\n", "3 columns, want 50"},
		{"nan", strings.Replace(miniBooNEText(1, 0), " 3.33333E-01", " nan", 1), "line 2, column 2"},
	} {
		_, err := ReadMiniBooNERaw(strings.NewReader(tc.data), "bad.txt")
		if err == nil || !strings.HasPrefix(err.Error(), "reading bad.txt: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestHEPMASSFeatures(t *testing.T) {
	// Column 0: smallest value -1 in 6 rows: dropped.
	// Column 1: smallest value in exactly 5 rows: kept (the rule is "more
	// than 5").
	// Column 2: value 7 in all but one row, smallest value unique: kept, as
	// in the MAF code, which counts the minimum, not the most frequent value.
	// Column 3: all distinct: kept.
	// Column 4: constant: dropped.
	const n = 10
	tab := &Tabular{Name: "hepmass", Split: "train", N: n, D: 5, Labels: make([]uint8, n)}
	for i := range n {
		c0 := float64(i)
		if i < 6 {
			c0 = -1
		}
		c1 := float64(i)
		if i >= 5 {
			c1 = -3
		}
		c2 := 7.0
		if i == 4 {
			c2 = 0.5
		}
		tab.X = append(tab.X, c0, c1, c2, float64(i)*1.5, 2)
		tab.Labels[i] = uint8(i % 2)
	}
	if got := RepeatedFeatures(tab, MAFMaxRepeats); !reflect.DeepEqual(got, []int{0, 4}) {
		t.Errorf("RepeatedFeatures = %v, want [0 4]", got)
	}
	if got := HEPMASSFeatureColumns(tab); !reflect.DeepEqual(got, []int{1, 2, 3}) {
		t.Errorf("HEPMASSFeatureColumns = %v, want [1 2 3]", got)
	}
	out := HEPMASSFeatures(tab)
	if out.N != n || out.D != 3 || out.Validate() != nil || !reflect.DeepEqual(out.Labels, tab.Labels) || out.Name != "hepmass" {
		t.Fatalf("HEPMASSFeatures: %+v", out)
	}
	for i := range n {
		if !reflect.DeepEqual(out.Row(i), []float64{tab.Row(i)[1], tab.Row(i)[2], tab.Row(i)[3]}) {
			t.Errorf("row %d = %v", i, out.Row(i))
		}
	}
}

func TestTabular(t *testing.T) {
	tab := &Tabular{Name: "x", Split: "test", N: 3, D: 2, X: []float64{1, 2, 3, 4, 5, 6}, Labels: []uint8{7, 8, 9}}
	if err := tab.Validate(); err != nil {
		t.Fatal(err)
	}
	h := tab.Head(2)
	if h.N != 2 || !reflect.DeepEqual(h.X, []float64{1, 2, 3, 4}) || !reflect.DeepEqual(h.Labels, []uint8{7, 8}) || cap(h.X) != 4 || h.Name != "x" {
		t.Errorf("Head(2) = %+v", h)
	}
	if tab.Head(-1).N != 0 || tab.Head(10).N != 3 {
		t.Error("Head bounds")
	}
	s := tab.Subset([]int{2, 0, 2})
	if !reflect.DeepEqual(s.X, []float64{5, 6, 1, 2, 5, 6}) || !reflect.DeepEqual(s.Labels, []uint8{9, 7, 9}) || s.Validate() != nil {
		t.Errorf("Subset = %+v", s)
	}
	s.X[0] = 100
	if tab.X[4] != 5 {
		t.Error("Subset shares storage")
	}
	for _, bad := range []*Tabular{
		{N: -1},
		{N: 2, D: 2, X: make([]float64, 3)},
		{N: 1, D: 1, X: []float64{1}, Labels: []uint8{1, 2}},
		{N: 1, D: 2, X: []float64{1, math.Inf(-1)}},
		{N: math.MaxInt/2 + 1, D: 4},
	} {
		if bad.Validate() == nil {
			t.Errorf("Validate(%v) = nil", bad)
		}
	}
}

func FuzzReadCSV(f *testing.F) {
	f.Add([]byte("# label, f0\n1,2.5\n0,-1e3\n"), true)
	f.Add([]byte(miniBooNEText(2, 1)), false)
	f.Fuzz(func(t *testing.T, data []byte, hepmass bool) {
		if hepmass {
			tab, err := ReadCSV(strings.NewReader(string(data)), "fuzz.csv", CSVOptions{Header: true, Label: true})
			if err == nil {
				if err := tab.Validate(); err != nil {
					t.Fatal(err)
				}
				HEPMASSFeatures(tab)
			}
			return
		}
		tab, err := ReadMiniBooNERaw(strings.NewReader(string(data)), "fuzz.txt")
		if err == nil {
			if err := tab.Validate(); err != nil || tab.D != 50 {
				t.Fatal(tab.D, err)
			}
		}
	})
}
