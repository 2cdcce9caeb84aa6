package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// schemaVersion is one schemas/<subject>/v<N>.avsc file, read at run time, never retyped.
type schemaVersion struct {
	subject string
	number  int
	path    string
	text    string
	fields  map[string]bool // the record's field names: what this version lets us set
}

type schemaSet map[string][]schemaVersion

var versionFile = regexp.MustCompile(`^v([1-9][0-9]*)\.avsc$`)

func loadSchemas(dir string) (schemaSet, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cannot read the schemas folder %s (give --schemas the repository's schemas/)", dir)
	}
	set := schemaSet{}
	for _, entry := range entries {
		if !entry.IsDir() || strings.HasPrefix(entry.Name(), ".") {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, entry.Name()))
		if err != nil {
			return nil, err
		}
		for _, file := range files {
			match := versionFile.FindStringSubmatch(file.Name())
			if match == nil {
				continue
			}
			number, _ := strconv.Atoi(match[1])
			path := filepath.Join(dir, entry.Name(), file.Name())
			raw, err := os.ReadFile(path)
			if err != nil {
				return nil, err
			}
			var record struct {
				Fields []struct {
					Name string `json:"name"`
				} `json:"fields"`
			}
			if err := json.Unmarshal(raw, &record); err != nil {
				return nil, fmt.Errorf("%s: not a record schema: %v", path, err)
			}
			names := map[string]bool{}
			for _, f := range record.Fields {
				names[f.Name] = true
			}
			set[entry.Name()] = append(set[entry.Name()], schemaVersion{entry.Name(), number, path, string(raw), names})
		}
	}
	for subject := range set {
		sort.Slice(set[subject], func(i, j int) bool { return set[subject][i].number < set[subject][j].number })
	}
	for _, subject := range []string{"enrolment", "claim"} {
		if len(set[subject]) == 0 {
			return nil, fmt.Errorf("no %s/v<N>.avsc under %s (give --schemas the repository's schemas/)", subject, dir)
		}
	}
	return set, nil
}

func (s schemaSet) latest(subject string) int {
	versions := s[subject]
	return versions[len(versions)-1].number
}

func (s schemaSet) version(subject string, number int) (schemaVersion, error) {
	known := []string{}
	for _, v := range s[subject] {
		if v.number == number {
			return v, nil
		}
		known = append(known, strconv.Itoa(v.number))
	}
	return schemaVersion{}, fmt.Errorf("%s has no version %d; versions: %s", subject, number, strings.Join(known, ", "))
}

func (s schemaSet) all() []schemaVersion {
	out := []schemaVersion{}
	for _, versions := range s {
		out = append(out, versions...)
	}
	return out
}
