package main

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/soe"
	"github.com/linkedin/goavro/v2"
)

// encoder turns one event's fields into a complete single-object message: C3 01, the library's
// fingerprint of the schema, the Avro binary body. Nothing here writes the header by hand.
type encoder func(fields map[string]any) ([]byte, error)

func newEncoder(library string, v schemaVersion) (encoder, error) {
	switch library {
	case "hamba":
		schema, err := avro.ParseWithCache(v.text, "", &avro.SchemaCache{})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.path, err)
		}
		codec, err := soe.NewCodec(schema)
		if err != nil {
			return nil, err
		}
		return func(fields map[string]any) ([]byte, error) { return codec.Encode(hambaFields(fields)) }, nil
	case "goavro":
		codec, err := goavro.NewCodec(v.text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.path, err)
		}
		return func(fields map[string]any) ([]byte, error) {
			return codec.SingleFromNative(nil, goavroNative(fields))
		}, nil
	default:
		return nil, usageError{fmt.Sprintf("--library must be hamba or goavro, not %q", library)}
	}
}

// goavroNative wraps the non-null values of union fields the way goavro wants them: a one-entry
// map from the branch's type name to the value (hamba picks the branch from the Go type itself).
func goavroNative(fields map[string]any) map[string]any {
	native := make(map[string]any, len(fields))
	for name, value := range fields {
		switch v := value.(type) {
		case optionalString:
			if v.set {
				native[name] = goavro.Union("string", v.value)
			} else {
				native[name] = nil
			}
		default:
			native[name] = value
		}
	}
	return native
}

// optionalString is a ["null", "string"] field's value; for hamba it becomes a *string.
type optionalString struct {
	value string
	set   bool
}

func hambaFields(fields map[string]any) map[string]any {
	out := make(map[string]any, len(fields))
	for name, value := range fields {
		if v, ok := value.(optionalString); ok {
			if v.set {
				out[name] = v.value
			} else {
				out[name] = nil
			}
			continue
		}
		out[name] = value
	}
	return out
}

type header struct {
	fingerprint string // the 8 bytes after C3 01, hex, wire order
	canonical   string // the text the library hashes
}

func hambaHeader(v schemaVersion) (header, error) {
	schema, err := avro.ParseWithCache(v.text, "", &avro.SchemaCache{})
	if err != nil {
		return header{}, fmt.Errorf("%s: %w", v.path, err)
	}
	// What soe.NewCodec puts after C3 01 (schema.FingerprintUsing(avro.CRC64AvroLE)), and the
	// canonical text it hashes (schema.String()).
	fp, err := soe.ComputeFingerprint(schema)
	if err != nil {
		return header{}, err
	}
	return header{hex.EncodeToString(fp), schema.String()}, nil
}

func goavroHeader(v schemaVersion) (header, error) {
	codec, err := goavro.NewCodec(v.text)
	if err != nil {
		return header{}, fmt.Errorf("%s: %w", v.path, err)
	}
	var fp [8]byte
	for i := 0; i < 8; i++ {
		fp[i] = byte(codec.Rabin >> (8 * i)) // little-endian, as SingleFromNative puts it
	}
	return header{hex.EncodeToString(fp[:]), codec.CanonicalSchema()}, nil
}

func utcDay(ms int64) time.Time {
	t := time.UnixMilli(ms).UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
