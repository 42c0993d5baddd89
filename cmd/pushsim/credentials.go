package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pushd/pushd/internal/pushsim"
	"github.com/sideshow/apns2/token"
)

func certCommand() *command {
	return &command{
		name:  "cert",
		args:  "--kind development|production|universal --topic BUNDLE_ID [flags]",
		short: "issue a test APNs client certificate",
		long: `
Cert issues an APNs client certificate shaped like Apple's (RSA 2048, the
bundle id as subject UID, Apple's environment and topic extensions) from the
state directory's CA, making the CA if there is none, and writes PREFIX.pem
(certificate chain, then private key) and PREFIX.p12.

Without --password the .pem's key is plain and the .p12's password is
"pushsim". With --password the .pem's key is encrypted PKCS#8 (as
"openssl pkcs8 -topk8" writes it) and the .p12 takes the same password.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *cli) error {
			dir := fs.String("dir", defaultDir, "state `directory` holding the CA")
			kind := fs.String("kind", "", "certificate `kind`: development, production or universal (required)")
			topic := fs.String("topic", "", "`topic`: the bundle id of the app the certificate is for (required)")
			team := fs.String("team-id", pushsim.DefaultTeamID, "Apple team `id` for the subject's OU")
			out := fs.String("out", "", "write `PREFIX`.pem and PREFIX.p12 (default DIR/apns/certs/TOPIC-KIND, with -expired for --expired)")
			password := fs.String("password", "", "encrypt the .pem's key and the .p12 with this `password`")
			days := fs.Int("days", 365, "validity in `days`")
			expired := fs.Bool("expired", false, "make the certificate's validity end a day ago, for testing expiry handling")
			legacy := fs.Bool("legacy-p12", false, "write the .p12 in the old 3DES/RC2 format instead of AES-256 and PBKDF2")
			return func(_ context.Context, c *cli) error {
				switch {
				case *kind == "":
					return usageErrorf("--kind is required: development, production or universal")
				case *topic == "":
					return usageErrorf("--topic is required: the app's bundle id")
				case *team == "":
					return usageErrorf("--team-id must not be empty")
				case *dir == "":
					return usageErrorf("--dir must not be empty")
				case *days < 1:
					return usageErrorf("--days %d: want at least 1", *days)
				}
				k, err := pushsim.ParseCertKind(*kind)
				if err != nil {
					return usageErrorf("--kind %q: want development, production or universal", *kind)
				}
				d := stateDir(*dir)
				prefix := *out
				if prefix == "" {
					if !validName(*topic) {
						return usageErrorf("--topic %q cannot name a file; give --out", *topic)
					}
					name := *topic + "-" + string(k)
					if *expired {
						name += "-expired"
					}
					prefix = filepath.Join(d.certsDir(), name)
				}
				// Taking "x.pem" to mean the prefix "x" saves writing x.pem.pem.
				prefix = strings.TrimSuffix(strings.TrimSuffix(prefix, ".pem"), ".p12")

				req := pushsim.ClientCertRequest{Kind: k, BundleID: *topic, TeamID: *team}
				now := time.Now()
				if *expired {
					req.NotAfter = now.Add(-24 * time.Hour)
					req.NotBefore = req.NotAfter.AddDate(0, 0, -*days)
				} else {
					req.NotBefore = now.Add(-time.Hour)
					req.NotAfter = now.AddDate(0, 0, *days)
				}
				ca, caCreated, err := d.ensureCA()
				if err != nil {
					return err
				}
				cert, err := ca.IssueAPNsCert(req)
				if err != nil {
					return err
				}
				if err := mkdir(filepath.Dir(prefix)); err != nil {
					return err
				}
				p12Password := *password
				if p12Password == "" {
					p12Password = demoP12Password
				}
				pemPath, p12Path, err := writeClientCert(prefix, cert, *password, p12Password, *legacy)
				if err != nil {
					return err
				}

				w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				keyNote := "plain key"
				p12Note := fmt.Sprintf("password %q", demoP12Password)
				if *password != "" {
					keyNote = "key encrypted with --password"
					p12Note = "password as given by --password"
				}
				fmt.Fprintf(w, "certificate\t%s\t(chain and %s)\n", pemPath, keyNote)
				fmt.Fprintf(w, "PKCS#12\t%s\t(%s)\n", p12Path, p12Note)
				fmt.Fprintf(w, "kind\t%s\n", k)
				fmt.Fprintf(w, "topic\t%s\n", *topic)
				fmt.Fprintf(w, "team id\t%s\n", *team)
				fmt.Fprintf(w, "validity\t%s\n", validity(cert.Cert, now))
				fmt.Fprintf(w, "issuer\t%s%s\n", d.caCertPath(), createdNote(caCreated, "\t"))
				return w.Flush()
			}
		},
	}
}

func serviceAccountCommand() *command {
	return &command{
		name:  "service-account",
		args:  "--project PROJECT [flags]",
		short: "make an FCM service account key file",
		long: `
Service-account makes a Google service account key file like the one the
Firebase console downloads, for the FCM project --project. It writes it to
DIR/fcm/PROJECT.json, where serve finds it and learns its public key, and to
--out if given. Serve rewrites the token_uri of the copy in DIR to its own
token endpoint; the copy at --out keeps --token-uri.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *cli) error {
			dir := fs.String("dir", defaultDir, "state `directory`")
			project := fs.String("project", "", "FCM project `id` (required)")
			out := fs.String("out", "", "also write the key file to `path`")
			tokenURI := fs.String("token-uri", "https://127.0.0.1:2199/token", "OAuth2 token endpoint `URL` the file names")
			return func(_ context.Context, c *cli) error {
				switch {
				case *project == "":
					return usageErrorf("--project is required")
				case !validName(*project):
					return usageErrorf("--project %q: want a project id, which names a file", *project)
				case *dir == "":
					return usageErrorf("--dir must not be empty")
				}
				if u, err := url.Parse(*tokenURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					return usageErrorf("--token-uri %q: want an http or https URL", *tokenURI)
				}
				d := stateDir(*dir)
				path := d.accountPath(*project)
				if ok, err := exists(path); err != nil {
					return err
				} else if ok {
					return fmt.Errorf("service account %s already exists; delete it to make another", path)
				}
				sa, err := pushsim.GenerateServiceAccount(*project)
				if err != nil {
					return err
				}
				if err := writeAccount(path, sa, *tokenURI); err != nil {
					return err
				}
				if *out != "" {
					if err := writeAccount(*out, sa, *tokenURI); err != nil {
						return err
					}
				}
				w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(w, "service account\t%s\n", path)
				if *out != "" {
					fmt.Fprintf(w, "copy\t%s\n", *out)
				}
				fmt.Fprintf(w, "project\t%s\n", sa.ProjectID)
				fmt.Fprintf(w, "client_email\t%s\n", sa.ClientEmail)
				fmt.Fprintf(w, "token_uri\t%s\n", *tokenURI)
				return w.Flush()
			}
		},
	}
}

func apnsKeyCommand() *command {
	return &command{
		name:  "apns-key",
		args:  "[flags]",
		short: "make an APNs token signing key (.p8)",
		long: `
Apns-key makes a P-256 token signing key like the AuthKey_<KEYID>.p8 files
Apple hands out, writes it to DIR/apns/AuthKey_<KEYID>.p8 and records its
team id in DIR/apns/keys.json. Serve accepts provider tokens signed with every
key there from its next start.`,
		flags: func(fs *flag.FlagSet) func(context.Context, *cli) error {
			dir := fs.String("dir", defaultDir, "state `directory`")
			keyID := fs.String("key-id", "", "key `id` (default ten random characters, like Apple's)")
			team := fs.String("team-id", pushsim.DefaultTeamID, "Apple team `id` the key belongs to")
			return func(_ context.Context, c *cli) error {
				switch {
				case *keyID != "" && !validKeyID(*keyID):
					return usageErrorf("--key-id %q: want letters and digits", *keyID)
				case *team == "":
					return usageErrorf("--team-id must not be empty")
				case *dir == "":
					return usageErrorf("--dir must not be empty")
				}
				k, err := pushsim.GenerateAPNsKey(*keyID, *team)
				if err != nil {
					return err
				}
				path, err := stateDir(*dir).writeAPNsKey(k)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintf(w, "key\t%s\n", path)
				fmt.Fprintf(w, "key id\t%s\n", k.KeyID)
				fmt.Fprintf(w, "team id\t%s\n", k.TeamID)
				return w.Flush()
			}
		},
	}
}

// validKeyID reports whether id is letters and digits, as Apple's key ids
// are, which also keeps it to one path element.
func validKeyID(id string) bool {
	return id != "" && strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == ""
}

func bearerCommand() *command {
	return &command{
		name:  "bearer",
		args:  "[flags]",
		short: "print an APNs provider token for curl or h2load",
		long: `
Bearer prints an APNs provider token (an ES256 JWT with the key id in its
header and the team id and issue time in its claims), signed with a key from
the state directory, made as github.com/sideshow/apns2 makes them. Apple and
serve honour a token for an hour.

	curl --http2 --cacert data/pushsim/ca.pem \
		-H "authorization: bearer $(pushsim bearer)" -H "apns-topic: com.example.chat" \
		-d '{"aps":{"alert":"hi"}}' \
		https://127.0.0.1:2198/3/device/$(pushsim mint --env development)`,
		flags: func(fs *flag.FlagSet) func(context.Context, *cli) error {
			dir := fs.String("dir", defaultDir, "state `directory`")
			keyID := fs.String("key-id", "", "key `id` to sign with (default the only key in DIR)")
			team := fs.String("team-id", "", "team `id` for the iss claim (default the key's, from keys.json)")
			return func(_ context.Context, c *cli) error {
				if *dir == "" {
					return usageErrorf("--dir must not be empty")
				}
				d := stateDir(*dir)
				k, err := d.pickAPNsKey(*keyID)
				if err != nil {
					return err
				}
				teamID := k.TeamID
				if *team != "" {
					teamID = *team
				}
				// apns2's own token code, so the bearer is byte for byte what
				// a sender using apns2 presents. Generate, unlike
				// GenerateIfExpired, reports failure.
				t := &token.Token{AuthKey: k.Key, KeyID: k.KeyID, TeamID: teamID}
				if _, err := t.Generate(); err != nil {
					return fmt.Errorf("sign provider token with %s: %w", d.keyPath(k.KeyID), err)
				}
				_, err = fmt.Fprintln(c.stdout, t.Bearer)
				return err
			}
		},
	}
}

// pickAPNsKey is the key with keyID in d, or d's only key when keyID is empty.
func (d stateDir) pickAPNsKey(keyID string) (*pushsim.APNsKey, error) {
	keys, err := d.loadAPNsKeys(pushsim.DefaultTeamID)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, k := range keys {
		ids = append(ids, k.key.KeyID)
	}
	switch {
	case len(keys) == 0:
		return nil, fmt.Errorf("no APNs keys in %s; make one with 'pushsim apns-key' or 'pushsim serve'", d.apnsDir())
	case keyID != "":
		i := slices.Index(ids, keyID)
		if i < 0 {
			return nil, usageErrorf("--key-id %q: no such key in %s (have %s)", keyID, d.apnsDir(), strings.Join(ids, ", "))
		}
		return keys[i].key, nil
	case len(keys) > 1:
		return nil, usageErrorf("%d APNs keys in %s; pick one with --key-id (%s)", len(keys), d.apnsDir(), strings.Join(ids, ", "))
	}
	return keys[0].key, nil
}
