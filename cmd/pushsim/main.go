// Pushsim runs the push-provider simulator of package internal/pushsim as a
// standalone server, and makes the credentials and device tokens that push
// senders need to talk to it.
//
// Usage:
//
//	pushsim <command> [flags]
//
// Run "pushsim help" for the commands and "pushsim help <command>" for
// their flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/pushd/pushd/internal/pushsim"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	c := &cli{stdout: stdout, stderr: stderr}
	return c.run(context.Background(), args)
}

// cli is one invocation's streams and hooks.
type cli struct {
	stdout, stderr io.Writer
	// started, if not nil, is called with the running simulator once serve
	// has printed its summary, so that tests can find the bound addresses
	// when they listen on port 0.
	started func(*pushsim.Sim)
}

// A command is a subcommand. Its flags function defines the flags on fs and
// returns the body to run once they are parsed; splitting the two lets
// "pushsim help <command>" list the flags without running anything.
type command struct {
	name  string
	args  string // synopsis after the command name
	short string // one line for the command list
	long  string // paragraphs for the command's own help
	flags func(fs *flag.FlagSet) func(ctx context.Context, c *cli) error
}

func commands() []*command {
	return []*command{
		serveCommand(),
		certCommand(),
		serviceAccountCommand(),
		apnsKeyCommand(),
		mintCommand(),
		bearerCommand(),
		demoCommand(),
		loadCommand(),
		{
			name:  "version",
			short: "print the version",
			long:  "Version prints pushsim's module version and the Go release that built it.",
			flags: func(fs *flag.FlagSet) func(context.Context, *cli) error {
				return func(_ context.Context, c *cli) error {
					fmt.Fprintln(c.stdout, version())
					return nil
				}
			},
		},
	}
}

func lookup(name string) *command {
	for _, cmd := range commands() {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

// defaultDir is where the state directory is unless --dir says otherwise.
const defaultDir = "data/pushsim"

// exit statuses, as the flag package uses them.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func (c *cli) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		return c.fail("pushsim", usageErrorf("no command given; see 'pushsim help'"))
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return c.help(rest)
	}
	cmd := lookup(name)
	if cmd == nil {
		return c.fail("pushsim", usageErrorf("unknown command %q; see 'pushsim help'", name))
	}
	fs := newFlagSet(cmd)
	body := cmd.flags(fs)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandUsage(c.stdout, cmd, fs)
			return exitOK
		}
		return c.fail(cmd.name, usageErrorf("%v; see 'pushsim %s --help'", err, cmd.name))
	}
	if fs.NArg() > 0 {
		return c.fail(cmd.name, usageErrorf("unexpected argument %q; see 'pushsim %s --help'", fs.Arg(0), cmd.name))
	}
	if err := body(ctx, c); err != nil {
		return c.fail(cmd.name, err)
	}
	return exitOK
}

func newFlagSet(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet("pushsim "+cmd.name, flag.ContinueOnError)
	// The flag package's own reports span several lines and go to stderr
	// before we can word them; we report its error ourselves.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func (c *cli) help(args []string) int {
	switch len(args) {
	case 0:
		printUsage(c.stdout)
		return exitOK
	case 1:
		switch args[0] {
		case "-h", "-help", "--help":
			printUsage(c.stdout)
			return exitOK
		}
		cmd := lookup(args[0])
		if cmd == nil {
			return c.fail("pushsim help", usageErrorf("unknown command %q; see 'pushsim help'", args[0]))
		}
		fs := newFlagSet(cmd)
		cmd.flags(fs)
		printCommandUsage(c.stdout, cmd, fs)
		return exitOK
	}
	return c.fail("pushsim help", usageErrorf("want at most one command, got %q", args))
}

// fail reports err as the single line scripts and people both read, and
// returns the exit status it calls for.
func (c *cli) fail(who string, err error) int {
	if !strings.HasPrefix(who, "pushsim") {
		who = "pushsim " + who
	}
	msg := strings.TrimPrefix(err.Error(), "pushsim: ")
	// Wrapped errors from elsewhere may span lines; the contract is one.
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
	fmt.Fprintf(c.stderr, "%s: %s\n", who, msg)
	if _, ok := errors.AsType[*usageError](err); ok {
		return exitUsage
	}
	return exitFailure
}

// usageError is a mistake on the command line, as opposed to one met while
// running; it exits with status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Pushsim simulates the APNs provider API and the FCM HTTP v1 API (with its
OAuth2 token endpoint) for testing push senders, and makes the credentials
and device tokens they need.

Usage:

	pushsim <command> [flags]

Commands:

`)
	for _, cmd := range commands() {
		fmt.Fprintf(w, "\t%-16s %s\n", cmd.name, cmd.short)
	}
	fmt.Fprintf(w, "\t%-16s %s\n", "help", "print help for a command")
	fmt.Fprint(w, `
Run 'pushsim help <command>' or 'pushsim <command> --help' for a command's flags.
`)
}

func printCommandUsage(w io.Writer, cmd *command, fs *flag.FlagSet) {
	synopsis := "pushsim " + cmd.name
	if cmd.args != "" {
		synopsis += " " + cmd.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", synopsis, strings.TrimSpace(cmd.long))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprint(w, "\nFlags:\n\n")
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		dashes := "--"
		if len(f.Name) == 1 {
			dashes = "-"
		}
		fmt.Fprintf(w, "  %s%s", dashes, f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		fmt.Fprintf(w, "\n    \t%s", strings.ReplaceAll(usage, "\n", "\n    \t"))
		if d := defaultText(f); d != "" {
			fmt.Fprintf(w, " (default %s)", d)
		}
		fmt.Fprintln(w)
	})
}

// defaultText is f's default as the flag package's PrintDefaults shows it,
// or "" when the default is the zero value and not worth showing.
func defaultText(f *flag.Flag) string {
	switch f.DefValue {
	case "", "0", "false":
		return ""
	}
	if g, ok := f.Value.(flag.Getter); ok {
		if _, isString := g.Get().(string); isString {
			return fmt.Sprintf("%q", f.DefValue)
		}
	}
	return f.DefValue
}

func version() string {
	v := "(devel)"
	goVersion := "unknown Go version"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		goVersion = bi.GoVersion
	}
	return "pushsim " + v + " " + goVersion
}
