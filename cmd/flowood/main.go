// Command flowood trains normalizing flows and evaluates them as
// out-of-distribution detectors, reproducing Kirichenko, Izmailov & Wilson
// (2020), "Why Normalizing Flows Fail to Detect Out-of-Distribution Data".
//
// Usage:
//
//	flowood demo                      train and evaluate on embedded real data (offline)
//	flowood train --data fashionmnist --preset cpu --out RUN
//	flowood eval RUN --ood mnist,notmnist
//	flowood help [command]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

func main() {
	// SIGINT (Ctrl-C) and SIGTERM cancel ctx: training saves a checkpoint
	// and stops after its current step. A second signal ends the process
	// at once (stop restores the default handling).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "flowood:", err)
		}
		os.Exit(1)
	}
}

// command is one subcommand.
type command struct {
	UsageLine string
	Short     string
	// Run executes the command with its arguments (after the name).
	Run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands map[string]*command

func init() {
	commands = map[string]*command{
		"train": trainCmd,
		"eval":  evalCmd,
		"demo":  demoCmd,
		"bench": benchCmd,
		"data":  dataCmd,
	}
}

// run dispatches to a subcommand.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				fmt.Fprintf(stdout, "usage: flowood %s\n\n%s\n", c.UsageLine, c.Short)
				return nil
			}
		}
		usage(stdout)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q (run 'flowood help')", args[0])
	}
	return c.Run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "flowood: normalizing flows and out-of-distribution detection")
	fmt.Fprintln(w, "\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-6s %s\n", n, commands[n].Short)
	}
	fmt.Fprintln(w, "\nRun 'flowood help COMMAND' for a command's flags.")
}

// newFlags returns a flag set that reports errors instead of exiting and
// prints usage to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseInterleaved parses flags that may follow positional arguments (as
// in "flowood eval RUN --ood mnist") and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
