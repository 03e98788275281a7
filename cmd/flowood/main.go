// Command flowood trains normalizing flows and evaluates them as
// out-of-distribution detectors, reproducing Kirichenko, Izmailov & Wilson
// (2020), "Why Normalizing Flows Fail to Detect Out-of-Distribution Data".
//
// Usage:
//
//	flowood demo                      train and evaluate on embedded real data (offline)
//	flowood train --data fashionmnist --preset cpu --out RUN
//	flowood eval RUN --ood mnist,notmnist
//	flowood sample RUN --n 64 --out samples.png
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
	"sync/atomic"
	"syscall"
)

func main() {
	// SIGINT (Ctrl-C) and SIGTERM cancel ctx: training saves a checkpoint
	// and stops after its current step, evaluation between batches. A
	// second signal ends the process at once (the default handling is
	// restored after the first).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	var got atomic.Value
	go func() {
		s := <-sigs
		got.Store(s)
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		cancel()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "flowood:", err)
	}
	sig, _ := got.Load().(os.Signal)
	os.Exit(exitCode(err, sig))
}

// exitCode is the exit status for run's error: 0 for none and for a help
// request (-h), 128 + the signal's number for a command stopped by a
// signal (130 for SIGINT, 143 for SIGTERM), 1 for any other error.
func exitCode(err error, sig os.Signal) int {
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, context.Canceled):
		if s, ok := sig.(syscall.Signal); ok {
			return 128 + int(s)
		}
		return 130
	}
	return 1
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
		"train":     trainCmd,
		"eval":      evalCmd,
		"demo":      demoCmd,
		"bench":     benchCmd,
		"data":      dataCmd,
		"serve":     serveCmd,
		"viz":       vizCmd,
		"reproduce": reproduceCmd,
		"sample":    sampleCmd,
	}
}

// run dispatches to a subcommand. "flowood help COMMAND" runs the
// command with -h, which prints its usage line and flags to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) || args[0] == "help" {
		if len(args) > 1 {
			c, ok := commands[args[1]]
			if !ok {
				return fmt.Errorf("help: unknown command %q (run 'flowood help')", args[1])
			}
			if err := c.Run(ctx, append([]string{"-h"}, args[2:]...), stdout, stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
				return err
			}
			return nil
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
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].Short)
	}
	fmt.Fprintln(w, "\nRun 'flowood help COMMAND' for a command's flags.")
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// newFlags returns a flag set for command name ("train", "data show")
// that reports errors instead of exiting and prints its usage (the
// command's usage line, description and flags) to stderr: on -h, when
// Parse returns flag.ErrHelp, which main turns into exit status 0.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		line, short := "flowood "+name+" [flags]", ""
		if c, ok := commands[name]; ok {
			line, short = "flowood "+c.UsageLine, c.Short
		}
		fmt.Fprintf(w, "usage: %s\n", line)
		if short != "" {
			fmt.Fprintf(w, "\n%s\n", short)
		}
		fmt.Fprintf(w, "\nflags:\n")
		fs.PrintDefaults()
	}
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
