// Pushd is the offline push notification dispatcher behind an IM server:
// Asynq workers take "recipients offline" jobs, drop recipients who muted
// the conversation, look up their devices and push through APNs or FCM.
//
// Usage:
//
//	pushd serve   --config pushd.yaml   run the HTTP API and the workers
//	pushd migrate --config pushd.yaml   bring the database schema up to date
//	pushd send    --config pushd.yaml --to alice,bob ...   enqueue a test job
//	pushd version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	_ "time/tzdata" // installations' time zones load on machines without tzdata
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// A command is one of pushd's subcommands.
type command struct {
	name, args, short, long string
	// flags defines the flags and returns the body to run once parsed.
	flags func(fs *flag.FlagSet) func(ctx context.Context, out io.Writer) error
}

func commands() []command {
	return []command{serveCommand(), migrateCommand(), sendCommand(), {
		name:  "version",
		short: "print the version",
		long:  "Version prints pushd's module version and the Go release that built it.",
		flags: func(*flag.FlagSet) func(context.Context, io.Writer) error {
			return func(_ context.Context, out io.Writer) error {
				fmt.Fprintln(out, version())
				return nil
			}
		},
	}}
}

// usageError is a command-line mistake: exit status 2.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) == 2 {
			for _, c := range commands() {
				if c.name == args[1] {
					fs := flag.NewFlagSet("pushd "+c.name, flag.ContinueOnError)
					c.flags(fs)
					printCommandHelp(stdout, c, fs)
					return 0
				}
			}
		}
		printHelp(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		fs := flag.NewFlagSet("pushd "+c.name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		body := c.flags(fs)
		if err := fs.Parse(args[1:]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printCommandHelp(stdout, c, fs)
				return 0
			}
			return fail(stderr, c.name, usagef("%v; see 'pushd %s --help'", err, c.name))
		}
		if fs.NArg() > 0 {
			return fail(stderr, c.name, usagef("unexpected argument %q; see 'pushd %s --help'", fs.Arg(0), c.name))
		}
		if err := body(ctx, stdout); err != nil {
			return fail(stderr, c.name, err)
		}
		return 0
	}
	return fail(stderr, "", usagef("unknown command %q; see 'pushd help'", args[0]))
}

// fail prints err as one line and returns the exit status it calls for.
func fail(stderr io.Writer, cmd string, err error) int {
	who := "pushd"
	if cmd != "" {
		who += " " + cmd
	}
	// The contract is one line; multi-line errors (a config's problems)
	// fold into it.
	msg := strings.ReplaceAll(err.Error(), ":\n", ": ")
	msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", "; ")), " ")
	fmt.Fprintf(stderr, "%s: %s\n", who, msg)
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

func printHelp(w io.Writer) {
	fmt.Fprint(w, `Pushd dispatches offline push notifications for an IM server through APNs and FCM.

Usage:

	pushd <command> [flags]

Commands:

`)
	for _, c := range commands() {
		fmt.Fprintf(w, "\t%-8s %s\n", c.name, c.short)
	}
	fmt.Fprint(w, "\nRun 'pushd <command> --help' for a command's flags.\n")
}

func printCommandHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: pushd %s %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.long))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nFlags:\n\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

func version() string {
	v, goVersion := "(devel)", "unknown Go version"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		goVersion = bi.GoVersion
	}
	return "pushd " + v + " " + goVersion
}
