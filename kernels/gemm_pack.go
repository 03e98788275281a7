package kernels

// packBRange packs op(B)[po:pe, jc:jc+ncb] into dst as consecutive k
// blocks, as kEnd delimits them (kc deep but for the last, or the last of
// a segment of an implicit A), each a run of nr-wide slivers, with the
// slivers shared out among the workers when the panel is large.
func (g *gemmProblem) packBRange(po, pe, kc, jc, ncb, nr int, dst []float32, workers int) {
	slivers := (ncb + nr - 1) / nr
	var starts []int
	for pc := po; pc < pe; pc = g.kEnd(pc, pe, kc) {
		starts = append(starts, pc)
	}
	pack := func(lo, hi int) {
		for t := lo; t < hi; t++ {
			pc := starts[t/slivers]
			s := t % slivers
			g.packB(pc, g.kEnd(pc, pe, kc)-pc, jc, ncb, s, s+1, nr, dst[(pc-po)*slivers*nr:])
		}
	}
	if workers <= 1 || (pe-po)*ncb < 1<<15 {
		pack(0, len(starts)*slivers)
		return
	}
	Par(workers).ParallelFor(len(starts)*slivers, 1, pack)
}

// packA packs op(A)[ic:ic+mcb, pc:pc+kcb] into dst as consecutive mr-row
// slivers, each stored k-major (dst[p*mr+i]); rows past mcb in the last
// sliver are zero.
func (g *gemmProblem) packA(ic, mcb, pc, kcb, mr int, dst []float32) {
	a, lda := g.a, g.lda
	for ir := 0; ir < mcb; ir += mr {
		rows := min(mr, mcb-ir)
		d := dst[ir*kcb : ir*kcb+mr*kcb]
		if !g.transA {
			for i := 0; i < rows; i++ {
				// Contiguous runs: the whole block, or up to the end of
				// a segment of an implicit A.
				for p := 0; p < kcb; {
					run := kcb - p
					if g.aSeg != nil {
						run = min(run, g.segK-(pc+p)%g.segK)
					}
					src := a[g.aIndex(ic+ir+i, pc+p):]
					for q, v := range src[:run] {
						d[(p+q)*mr+i] = v
					}
					p += run
				}
			}
		} else {
			for p := 0; p < kcb; p++ {
				src := a[(pc+p)*lda+ic+ir:]
				copy(d[p*mr:p*mr+rows], src[:rows])
			}
		}
		if rows < mr {
			for p := 0; p < kcb; p++ {
				clear(d[p*mr+rows : p*mr+mr])
			}
		}
	}
}

// packB packs slivers s0..s1 of op(B)[pc:pc+kcb, jc:jc+ncb] into dst; sliver
// s covers columns jc+s*nr.. and is stored at dst[s*kcb*nr:] k-major
// (dst[p*nr+j]); columns past ncb are zero.
func (g *gemmProblem) packB(pc, kcb, jc, ncb, s0, s1, nr int, dst []float32) {
	b, ldb := g.b, g.ldb
	for s := s0; s < s1; s++ {
		j0 := s * nr
		cols := min(nr, ncb-j0)
		d := dst[s*kcb*nr : (s+1)*kcb*nr]
		if !g.transB {
			for p := 0; p < kcb; p++ {
				src := b[(pc+p)*ldb+jc+j0:]
				copy(d[p*nr:p*nr+cols], src[:cols])
				if cols < nr {
					clear(d[p*nr+cols : p*nr+nr])
				}
			}
		} else {
			// Eight columns of B (rows of the stored Bᵀ) at a time: each k
			// step then writes 32 contiguous bytes instead of one value
			// per cache line, 2.6-3.5x faster for the App. K bottleneck's
			// input gradients (docs/perf.md).
			j := 0
			for ; j+8 <= cols; j += 8 {
				src := b[(jc+j0+j)*ldb+pc:]
				s0 := src[:kcb]
				s1 := src[ldb:][:len(s0)]
				s2 := src[2*ldb:][:len(s0)]
				s3 := src[3*ldb:][:len(s0)]
				s4 := src[4*ldb:][:len(s0)]
				s5 := src[5*ldb:][:len(s0)]
				s6 := src[6*ldb:][:len(s0)]
				s7 := src[7*ldb:][:len(s0)]
				for p := range s0 {
					o := p*nr + j
					dd := d[o : o+8 : o+8]
					dd[0], dd[1], dd[2], dd[3] = s0[p], s1[p], s2[p], s3[p]
					dd[4], dd[5], dd[6], dd[7] = s4[p], s5[p], s6[p], s7[p]
				}
			}
			for ; j < cols; j++ {
				src := b[(jc+j0+j)*ldb+pc:]
				src = src[:kcb]
				for p, v := range src {
					d[p*nr+j] = v
				}
			}
			if cols < nr {
				for p := 0; p < kcb; p++ {
					clear(d[p*nr+cols : p*nr+nr])
				}
			}
		}
	}
}
