package runfile

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLightDeps checks that reading a run's configuration (runfile) and
// building its model (model) pull in neither the dataset downloaders,
// plotting, the training loop nor the experiment pipeline, so that a
// scoring library can import them.
func TestLightDeps(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/flowood/flowood/runfile", "github.com/flowood/flowood/model",
		"github.com/flowood/flowood/model/datakind").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range []string{"github.com/flowood/flowood/data", "github.com/flowood/flowood/viz",
			"github.com/flowood/flowood/train", "github.com/flowood/flowood/experiment", "github.com/flowood/flowood/ood",
			"gonum.org/v1/plot", "net/http"} {
			if dep == bad || strings.HasPrefix(dep, bad+"/") {
				t.Errorf("runfile or model depends on %s", dep)
			}
		}
	}
}
