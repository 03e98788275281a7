// Package progress prints a one-line progress report with throughput and
// ETA for long work: redrawn in place on a terminal, a line every few
// seconds otherwise (logs, CI).
//
// It is a hundred lines rather than a dependency such as
// github.com/schollz/progressbar or github.com/cheggaaa/pb: those draw
// for terminals, and flowood's long runs mostly write to logs and CI,
// where a line every few seconds with rate, ETA and the training's own
// fields (epoch, bits/dim) is what is read; none of them prints that
// without a terminal.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Bar reports progress of Total units of work to W.
type Bar struct {
	W     io.Writer
	Label string
	Total int
	// Unit names what is counted for the rate (e.g. "img").
	Unit string
	// Start is the amount of work already done when the bar was created
	// (a resumed run); the ETA extrapolates from work done since.
	Start int

	start, last time.Time
	tty         bool
	every       time.Duration
	now         func() time.Time
}

// New returns a bar writing to w; a nil w discards.
func New(w io.Writer, label string, total int, unit string) *Bar {
	if w == nil {
		w = io.Discard
	}
	b := &Bar{W: w, Label: label, Total: total, Unit: unit, now: time.Now, every: 10 * time.Second}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.tty, b.every = true, 200*time.Millisecond
		}
	}
	b.start = b.now()
	return b
}

// Update reports that done units are complete, with rateUnits processed so
// far for the throughput figure and extra appended (e.g. the loss).
func (b *Bar) Update(done, rateUnits int, extra string) {
	now := b.now()
	if now.Sub(b.last) < b.every && done < b.Total {
		return
	}
	b.last = now
	fmt.Fprint(b.W, b.Line(done, rateUnits, extra, now))
	if !b.tty {
		fmt.Fprintln(b.W)
	}
}

// Line formats the report at time now.
func (b *Bar) Line(done, rateUnits int, extra string, now time.Time) string {
	el := now.Sub(b.start)
	frac := 0.0
	if b.Total > 0 {
		frac = min(1, max(0, float64(done)/float64(b.Total)))
	}
	const width = 24
	fill := int(frac * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	rate := 0.0
	if el > 0 {
		rate = float64(rateUnits) / el.Seconds()
	}
	eta := "?"
	if done > b.Start && done < b.Total {
		eta = fmtDur(time.Duration(float64(el) * float64(b.Total-done) / float64(done-b.Start)))
	} else if done >= b.Total {
		eta = "done in " + fmtDur(el)
	}
	s := fmt.Sprintf("%s [%s] %3.0f%% %d/%d  %.1f %s/s  ETA %s", b.Label, bar, 100*frac, done, b.Total, rate, b.Unit, eta)
	if extra != "" {
		s += "  " + extra
	}
	if b.tty {
		s = "\r" + s + "\033[K"
		if done >= b.Total {
			s += "\n"
		}
	}
	return s
}

func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	if d >= time.Minute {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}
