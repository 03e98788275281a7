package tmpdep

import (
	_ "gonum.org/v1/gonum/mat"
	_ "gonum.org/v1/gonum/stat"
	_ "gonum.org/v1/gonum/integrate"
	_ "gonum.org/v1/plot"
	_ "github.com/mmcloughlin/avo/build"
)
