package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math"

	"github.com/pushd/pushd/internal/pushsim"
)

func mintCommand() *command {
	return &command{
		name:  "mint",
		args:  "[flags]",
		short: "print device tokens with a chosen fate",
		long: `
Mint prints device tokens, one a line, that a simulator with the same --seed
treats as --fate says: valid tokens are accepted, unregistered ones meet APNs
410 Unregistered or FCM UNREGISTERED, malformed ones APNs 400 BadDeviceToken
or FCM INVALID_ARGUMENT. APNs tokens also belong to one environment and
topic, FCM tokens to one project.

Tokens are a pure function of the seed and the other flags: the token with
serial number K is the same on every run, so --start K -n N prints tokens K
to K+N-1 and runs with disjoint ranges never share a token.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *cli) error {
			provider := fs.String("provider", "apns", "`provider` the tokens are for: apns or fcm")
			fate := fs.String("fate", "valid", "`fate` of the tokens: valid, unregistered or malformed")
			env := fs.String("env", "production", "APNs `environment`: production or development")
			topic := fs.String("topic", "com.example.chat", "APNs `topic` (bundle id)")
			project := fs.String("project", "pushsim-demo", "FCM `project` id")
			n := fs.Int("n", 1, "`count` of tokens to print")
			start := fs.Uint64("start", 0, "serial `number` of the first token")
			seed := fs.String("seed", "pushsim", "`seed` the simulator was started with")
			return func(_ context.Context, c *cli) error {
				set := make(map[string]bool)
				fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
				f, err := pushsim.ParseFate(*fate)
				if err != nil {
					return usageErrorf("--fate %q: want valid, unregistered or malformed", *fate)
				}
				switch {
				case *n < 1:
					return usageErrorf("-n %d: want at least 1", *n)
				case *start > math.MaxUint64-uint64(*n-1):
					return usageErrorf("--start %d -n %d: serial numbers run past 2^64-1", *start, *n)
				case *seed == "":
					return usageErrorf("--seed must not be empty")
				}
				var next func(serial uint64) string
				switch *provider {
				case "apns":
					if set["project"] {
						return usageErrorf("--project is for --provider fcm; APNs tokens take --env and --topic")
					}
					e, err := pushsim.ParseEnv(*env)
					if err != nil {
						return usageErrorf("--env %q: want production or development", *env)
					}
					if *topic == "" {
						return usageErrorf("--topic must not be empty")
					}
					m := pushsim.NewMinter(*seed)
					next = func(serial uint64) string { return m.APNs(f, e, *topic, serial) }
				case "fcm":
					if set["env"] || set["topic"] {
						return usageErrorf("--env and --topic are for --provider apns; FCM tokens take --project")
					}
					if *project == "" {
						return usageErrorf("--project must not be empty")
					}
					m := pushsim.NewMinter(*seed)
					next = func(serial uint64) string { return m.FCM(f, *project, serial) }
				default:
					return usageErrorf("--provider %q: want apns or fcm", *provider)
				}
				w := bufio.NewWriter(c.stdout)
				for i := range uint64(*n) {
					fmt.Fprintln(w, next(*start+i))
				}
				return w.Flush()
			}
		},
	}
}
