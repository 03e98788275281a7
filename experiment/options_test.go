package experiment

import (
	"strings"
	"testing"

	"github.com/flowood/flowood/model/realnvp"
)

func TestSetModelOption(t *testing.T) {
	rc, err := NewRunConfig("realnvp", "tiny", "mnist")
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.SetModelOption("blocks", "3"); err != nil {
		t.Fatal(err)
	}
	if err := rc.SetModelOption("activation", "softplus"); err != nil { // bare string
		t.Fatal(err)
	}
	if err := rc.Resolve(); err != nil {
		t.Fatal(err)
	}
	c := rc.ModelConfig.(realnvp.Config)
	if c.Blocks != 3 || c.Activation != "softplus" || c.Mid != 4 {
		t.Errorf("after --set blocks=3 activation=softplus: blocks %d activation %q mid %d (tiny's mid is 4)", c.Blocks, c.Activation, c.Mid)
	}

	err = rc.SetModelOption("no_such_field", "1")
	if err == nil || !strings.Contains(err.Error(), `model realnvp has no option "no_such_field"`) || !strings.Contains(err.Error(), "blocks") {
		t.Errorf("unknown option: got %v, want an error naming the model and listing its options", err)
	}
	if err := rc.SetModelOption("blocks", "many"); err != nil {
		t.Fatal(err) // a bare string; its type is checked by Resolve
	}
	if err := rc.Resolve(); err == nil || !strings.Contains(err.Error(), "blocks") {
		t.Errorf("blocks=many: Resolve gave %v, want an error naming blocks", err)
	}
}
