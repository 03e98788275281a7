package kernels

// macroSegmented computes, for macro, the row sliver at ir of a block
// whose implicit A is read in place with all its segments in one call
// (g.segFused), or from ir = 0 the loopTiles full tiles of a one-sliver
// B in one call; it returns the row of the last sliver it computed. A
// bottom-edge sliver is packed (all segments) and computed by kn.fn.
func (g *gemmProblem) macroSegmented(blk *macroBlock, ap, bp, c []float32, ldc int, beta float32, ts *scratch, ir, loopTiles int) int {
	kn := g.kern
	mr, nr := kn.mr, kn.nr
	kcb, alpha := blk.kcb, g.alpha
	nseg := len(g.aSeg)
	rows := min(mr, blk.mcb-ir)
	if testSegFused != nil {
		testSegFused()
	}
	as := g.a[g.aIndex(blk.ic+ir, 0):]
	if ir == 0 && loopTiles > 0 {
		jr := blk.s0 * nr
		kn.segLoop(g.segK, as, g.lda, bp[blk.s0*kcb*nr:], c[jr:], ldc, alpha, beta, loopTiles, mr*g.lda, nseg, g.segStep)
		return (loopTiles - 1) * mr
	}
	if rows < mr {
		g.packA(blk.ic+ir, rows, 0, kcb, mr, ap)
	}
	for s := blk.s0; s < blk.s1; s++ {
		jr := s * nr
		cols := min(nr, blk.ncb-jr)
		bs := bp[s*kcb*nr:]
		if rows == mr && cols == nr {
			kn.segLoop(g.segK, as, g.lda, bs, c[ir*ldc+jr:], ldc, alpha, beta, 1, 0, nseg, g.segStep)
			continue
		}
		tile := ts.get()
		if rows == mr {
			kn.segLoop(g.segK, as, g.lda, bs, tile, nr, alpha, 0, 1, 0, nseg, g.segStep)
		} else {
			kn.fn(kcb, ap, 1, mr, bs, tile, nr, alpha, 0)
		}
		mergeTile(c[ir*ldc+jr:], ldc, tile, nr, rows, cols, beta)
	}
	return ir
}

// mergeTile sets the rows×cols corner of C (leading dimension ldc) to
// beta*C plus the scratch tile's values (rows nr apart), as the
// micro-kernel would have for a whole tile.
func mergeTile(c []float32, ldc int, tile []float32, nr, rows, cols int, beta float32) {
	for i := 0; i < rows; i++ {
		crow := c[i*ldc : i*ldc+cols]
		trow := tile[i*nr : i*nr+cols]
		if beta == 0 {
			copy(crow, trow)
			continue
		}
		for j, v := range trow {
			crow[j] = beta*crow[j] + v
		}
	}
}

// macroBlock describes the part of the product one macro-kernel call
// covers: rows ic..ic+mcb of C, the k range pc..pc+kcb, and the column
// slivers s0..s1 of an ncb-column block.
type macroBlock struct {
	ic, mcb, pc, kcb, ncb int
	s0, s1                int
	direct                bool // read A in place; ap holds only edge slivers
}

// macro runs the micro-kernel over one block of C at c (leading dimension
// ldc) with the packed B block bp. A comes from the packed block ap, or in
// place from the operand when blk.direct is set. Partial tiles at the
// bottom and right edges go through the scratch tile.
func (g *gemmProblem) macro(blk *macroBlock, ap, bp, c []float32, ldc int, beta float32, ts *scratch) {
	kn := g.kern
	mr, nr := kn.mr, kn.nr
	kcb, alpha := blk.kcb, g.alpha
	// With one sliver of B, all full tiles go to one looping call.
	loopTiles := 0
	if kn.loop != nil && blk.s1-blk.s0 == 1 && blk.ncb-blk.s0*nr >= nr {
		loopTiles = blk.mcb / mr
	}
	for ir := 0; ir < blk.mcb; ir += mr {
		rows := min(mr, blk.mcb-ir)
		var as []float32
		var ars, acs, astep int
		switch {
		case !blk.direct:
			as, ars, acs, astep = ap[ir*kcb:], 1, mr, mr*kcb
		case !g.transA:
			as, ars, acs, astep = g.a[g.aIndex(blk.ic+ir, blk.pc):], g.lda, 1, mr*g.lda
		default:
			as, ars, acs, astep = g.a[blk.pc*g.lda+blk.ic+ir:], 1, g.lda, mr
		}
		if blk.direct && g.segFused {
			// An implicit A whole, from its first segment (blk.pc is 0).
			ir = g.macroSegmented(blk, ap, bp, c, ldc, beta, ts, ir, loopTiles)
			continue
		}
		if ir == 0 && loopTiles > 0 {
			jr := blk.s0 * nr
			kn.loop(kcb, as, ars, acs, bp[blk.s0*kcb*nr:], c[jr:], ldc, alpha, beta, loopTiles, astep)
			ir = (loopTiles - 1) * mr
			continue
		}
		// A short sliver at the bottom edge is still read in place when
		// its mr rows lie within the slice: the rows past the end of A
		// only feed rows of the scratch tile that are dropped (row i of
		// C depends on row i of A alone). Otherwise it is packed.
		if blk.direct && rows < mr {
			if (mr-1)*ars+(kcb-1)*acs >= len(as) {
				g.packA(blk.ic+ir, rows, blk.pc, kcb, mr, ap)
				as, ars, acs = ap, 1, mr
			} else if testEdgeInPlace != nil {
				testEdgeInPlace()
			}
		}
		for s := blk.s0; s < blk.s1; s++ {
			jr := s * nr
			cols := min(nr, blk.ncb-jr)
			bs := bp[s*kcb*nr:]
			if rows == mr && cols == nr {
				kn.fn(kcb, as, ars, acs, bs, c[ir*ldc+jr:], ldc, alpha, beta)
				continue
			}
			tile := ts.get()
			kn.fn(kcb, as, ars, acs, bs, tile, nr, alpha, 0)
			mergeTile(c[ir*ldc+jr:], ldc, tile, nr, rows, cols, beta)
		}
	}
}
