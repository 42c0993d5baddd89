package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/pushd/pushd/pushjob"
)

func migrateCommand() command {
	return command{
		name:  "migrate",
		args:  "[--config FILE]",
		short: "bring the database schema up to date",
		long: `
Migrate applies the schema migrations the database lacks and prints the
version it is at. Serve migrates at start as well; run this ahead of a
rollout to several nodes, or to check a database.`,
		flags: func(fs *flag.FlagSet) func(context.Context, io.Writer) error {
			path := configFlag(fs)
			return func(ctx context.Context, out io.Writer) error {
				cfg, err := loadConfig(*path)
				if err != nil {
					return err
				}
				db, err := openDatabase(ctx, cfg)
				if err != nil {
					return err
				}
				defer db.Close()
				v, err := db.Version(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s database at schema version %d\n", db.Dialect(), v)
				return nil
			}
		},
	}
}

func sendCommand() command {
	return command{
		name:  "send",
		args:  "--to CLIENT[,CLIENT...] [flags]",
		short: "enqueue a test job",
		long: `
Send enqueues one "recipients offline" job, as an IM server would, and
prints its task id. The workers of a running 'pushd serve' take it.`,
		flags: func(fs *flag.FlagSet) func(context.Context, io.Writer) error {
			path := configFlag(fs)
			app := fs.String("app", pushjob.DefaultApp, "app `id`")
			to := fs.String("to", "", "comma-separated recipient client `ids` (required)")
			conv := fs.String("conversation", "test-conversation", "conversation `id`")
			from := fs.String("from", "pushd-send", "sender client `id`")
			msg := fs.String("message-id", "", "message `id` (default: a new one per run)")
			title := fs.String("title", "", "notification `title` (default: the app's)")
			body := fs.String("body", "", "notification `body` (default: the app's)")
			mentions := fs.String("mentions", "", "comma-separated mentioned client `ids`")
			force := fs.Bool("force", false, "push even to recipients who muted the conversation")
			priority := fs.String("priority", "normal", "`priority`: high, normal or low")
			return func(ctx context.Context, out io.Writer) error {
				if *to == "" {
					return usagef("--to is required: the recipients' client ids, comma-separated")
				}
				cfg, err := loadConfig(*path)
				if err != nil {
					return err
				}
				j := pushjob.Job{
					AppID: *app, MessageID: *msg, ConversationID: *conv, FromClientID: *from,
					Recipients: split(*to), Mentions: split(*mentions), Force: *force, Priority: pushjob.Priority(*priority),
				}
				if j.MessageID == "" {
					j.MessageID = fmt.Sprintf("pushd-send-%d", time.Now().UnixNano())
				}
				if *title != "" || *body != "" {
					j.Push = &pushjob.Content{Title: *title, Body: *body}
				}
				if _, ok := cfg.App(j.AppID); !ok {
					return usagef("--app %q: not configured in %s", j.AppID, cfg.File)
				}
				c := asynq.NewClient(redisOpt(cfg))
				defer c.Close()
				id, err := pushjob.NewEnqueuer(c).Enqueue(ctx, j)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "enqueued %s (message %s, %d recipients)\n", id, j.MessageID, len(j.Recipients))
				return nil
			}
		},
	}
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
