// Command go-producer writes valid enrolment and claim events as Avro single-object messages with a
// Go Avro library's own encoder (github.com/hamba/avro/v2 soe.Codec, or github.com/linkedin/goavro/v2
// Codec.SingleFromNative), one file per message, for kcat to send. The schemas are read at run time.
//
//	go-producer write --schemas DIR --out DIR --count N [--library hamba|goavro]
//	    [--enrolment-version V] [--seed S] [--now-ms MS] [--branch-code B] [--agreement-id ID]
//	go-producer fingerprints --schemas DIR
//	go-producer canonical FILE...
//
// write: for each of N rounds an enrolment then a claim; message K is OUT/K.avro (the value) and
// OUT/K.key (the Kafka key: the worker's NIK, UTF-8). Prints "SUBJECT EVENT_ID VERSION FILE" per
// message. fingerprints: prints, as JSON, every version's header fingerprint and the canonical text
// each library hashes. canonical: the same for any schema files (or why a library refuses one), as
// JSON. Errors: one line on stderr, exit 2 for bad arguments, 1 otherwise.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"time"
)

const usage = "usage: go-producer write --schemas DIR --out DIR --count N [--library hamba|goavro]" +
	" [--enrolment-version V] [--seed S] [--now-ms MS] [--branch-code B] [--agreement-id ID]\n" +
	"       go-producer fingerprints --schemas DIR\n" +
	"       go-producer canonical FILE..."

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "error: "+err.Error())
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(argv []string) error {
	if len(argv) == 0 {
		return usageError{usage}
	}
	command, rest := argv[0], argv[1:]
	switch command {
	case "write":
		opts, err := parseFlags(rest, []string{"schemas", "out", "count", "library", "enrolment-version",
			"seed", "now-ms", "branch-code", "agreement-id"})
		if err != nil {
			return err
		}
		return write(opts)
	case "fingerprints":
		opts, err := parseFlags(rest, []string{"schemas"})
		if err != nil {
			return err
		}
		return fingerprints(opts)
	case "canonical":
		return canonical(rest)
	default:
		return usageError{fmt.Sprintf("unknown command %q\n%s", command, usage)}
	}
}

func parseFlags(argv []string, allowed []string) (map[string]string, error) {
	opts := map[string]string{}
	known := map[string]bool{}
	for _, name := range allowed {
		known[name] = true
	}
	for i := 0; i < len(argv); i += 2 {
		name := argv[i]
		if len(name) < 3 || name[:2] != "--" || !known[name[2:]] {
			return nil, usageError{fmt.Sprintf("unknown option %q\n%s", name, usage)}
		}
		if i+1 >= len(argv) {
			return nil, usageError{fmt.Sprintf("%s needs a value", name)}
		}
		opts[name[2:]] = argv[i+1]
	}
	return opts, nil
}

func intOption(opts map[string]string, name string, fallback int64, min int64) (int64, error) {
	text, ok := opts[name]
	if !ok {
		if fallback < min {
			return 0, usageError{fmt.Sprintf("--%s is required", name)}
		}
		return fallback, nil
	}
	value, err := strconv.ParseInt(text, 10, 64)
	if err != nil || value < min {
		return 0, usageError{fmt.Sprintf("--%s must be a whole number of at least %d", name, min)}
	}
	return value, nil
}

// code is a branch code or agreement id as the contract allows (docs/validation.md, code_invalid).
var code = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func codeOption(opts map[string]string, name, fallback string) (string, error) {
	value, ok := opts[name]
	if !ok {
		return fallback, nil
	}
	if !code.MatchString(value) {
		return "", usageError{fmt.Sprintf("--%s must be 1-64 characters from A-Z a-z 0-9 . _ -", name)}
	}
	return value, nil
}

func write(opts map[string]string) error {
	dir, out := opts["schemas"], opts["out"]
	if dir == "" || out == "" {
		return usageError{"--schemas and --out are required\n" + usage}
	}
	count, err := intOption(opts, "count", -1, 1)
	if err != nil {
		return err
	}
	seed, err := intOption(opts, "seed", time.Now().UnixNano()&0x7FFFFFFFFFFFFFFF, 0) // no seed: every run differs
	if err != nil {
		return err
	}
	nowMs, err := intOption(opts, "now-ms", time.Now().UnixMilli(), 1)
	if err != nil {
		return err
	}
	branch, err := codeOption(opts, "branch-code", "PALU")
	if err != nil {
		return err
	}
	agreement, err := codeOption(opts, "agreement-id", "PKS-7271-2025")
	if err != nil {
		return err
	}
	library := opts["library"]
	if library == "" {
		library = "hamba"
	}
	catalogue, err := loadSchemas(dir)
	if err != nil {
		return err
	}
	enrolmentVersion, err := intOption(opts, "enrolment-version", int64(catalogue.latest("enrolment")), 1)
	if err != nil {
		return err
	}
	enrolment, err := catalogue.version("enrolment", int(enrolmentVersion))
	if err != nil {
		return usageError{err.Error()}
	}
	claim, err := catalogue.version("claim", catalogue.latest("claim"))
	if err != nil {
		return err
	}
	encodeEnrolment, err := newEncoder(library, enrolment)
	if err != nil {
		return err
	}
	encodeClaim, err := newEncoder(library, claim)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	events := newEvents(uint64(seed), agreement, branch, nowMs)
	n := 0
	emit := func(subject string, version int, ev event, encode encoder) error {
		value, err := encode(ev.fields)
		if err != nil {
			return fmt.Errorf("%s v%d: %w", subject, version, err)
		}
		path := filepath.Join(out, fmt.Sprintf("%04d.avro", n))
		if err := os.WriteFile(path, value, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, fmt.Sprintf("%04d.key", n)), []byte(ev.key), 0o600); err != nil {
			return err
		}
		n++
		fmt.Printf("%s %s %d %s\n", subject, ev.eventID, version, path)
		return nil
	}
	for i := 0; i < int(count); i++ {
		if err := emit("enrolment", enrolment.number, events.enrolment(enrolment, i), encodeEnrolment); err != nil {
			return err
		}
		if err := emit("claim", claim.number, events.claim(claim), encodeClaim); err != nil {
			return err
		}
	}
	return nil
}

type fingerprintEntry struct {
	Subject         string `json:"subject"`
	Version         int    `json:"version"`
	Hamba           string `json:"hamba"`
	HambaCanonical  string `json:"hamba_canonical"`
	Goavro          string `json:"goavro"`
	GoavroCanonical string `json:"goavro_canonical"`
}

func fingerprints(opts map[string]string) error {
	if opts["schemas"] == "" {
		return usageError{"--schemas is required\n" + usage}
	}
	catalogue, err := loadSchemas(opts["schemas"])
	if err != nil {
		return err
	}
	entries := []fingerprintEntry{}
	for _, v := range catalogue.all() {
		h, err := hambaHeader(v)
		if err != nil {
			return err
		}
		g, err := goavroHeader(v)
		if err != nil {
			return err
		}
		entries = append(entries, fingerprintEntry{v.subject, v.number, h.fingerprint, h.canonical, g.fingerprint, g.canonical})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Subject != entries[j].Subject {
			return entries[i].Subject < entries[j].Subject
		}
		return entries[i].Version < entries[j].Version
	})
	text, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(text))
	return nil
}

type canonicalEntry struct {
	File            string `json:"file"`
	Hamba           string `json:"hamba,omitempty"`
	HambaCanonical  string `json:"hamba_canonical,omitempty"`
	HambaError      string `json:"hamba_error,omitempty"`
	Goavro          string `json:"goavro,omitempty"`
	GoavroCanonical string `json:"goavro_canonical,omitempty"`
	GoavroError     string `json:"goavro_error,omitempty"`
}

func canonical(files []string) error {
	if len(files) == 0 {
		return usageError{"canonical needs schema files\n" + usage}
	}
	entries := []canonicalEntry{}
	for _, path := range files {
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		v := schemaVersion{path: path, text: string(raw)}
		entry := canonicalEntry{File: filepath.Base(path)}
		if h, err := hambaHeader(v); err != nil {
			entry.HambaError = err.Error()
		} else {
			entry.Hamba, entry.HambaCanonical = h.fingerprint, h.canonical
		}
		if g, err := goavroHeader(v); err != nil {
			entry.GoavroError = err.Error()
		} else {
			entry.Goavro, entry.GoavroCanonical = g.fingerprint, g.canonical
		}
		entries = append(entries, entry)
	}
	text, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		return err
	}
	fmt.Println(string(text))
	return nil
}
