package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"

	"github.com/docker/cli/templates"
)

// formatter is a --format value in docker's template language: a Go
// template with docker's functions (json, join, split, lower, upper,
// title, pad, truncate), where a typed `\t` or `\n` is a tab or a newline.
// "table" before the template aligns its columns under a header naming
// each field; "json" alone prints each row as one line of JSON.
type formatter struct {
	tmpl    *template.Template
	header  *template.Template // with "table"
	headers map[string]string  // the header of each field
}

// parseFormat reads the --format value s. "table" alone is defaultTable;
// headers names the column of each field a table can show. A template
// that does not parse is a usage error.
func parseFormat(s, defaultTable string, headers map[string]string) (*formatter, error) {
	table := false
	switch {
	case s == "table":
		s = defaultTable
		fallthrough
	case strings.HasPrefix(s, "table"):
		table, s = true, s[len("table"):]
	case s == "json":
		s = "{{json .}}"
	}
	s = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(strings.Trim(s, " "))
	tmpl, err := templates.Parse(s)
	if err != nil {
		return nil, usagef("--format: %v", err)
	}
	f := &formatter{tmpl: tmpl, headers: headers}
	if table {
		// The header is the same template run over the column names, with
		// functions that leave those names as they are.
		if f.header, err = templates.New("header").Funcs(templates.HeaderFunctions).Parse(s); err != nil {
			return nil, usagef("--format: %v", err)
		}
	}
	return f, nil
}

// write prints rows, one line each, after the header of a table. Nothing
// is written when a row fails to execute.
func (f *formatter) write(w io.Writer, rows []any) error {
	var buf bytes.Buffer
	for _, r := range rows {
		if err := f.tmpl.Execute(&buf, r); err != nil {
			return err
		}
		buf.WriteByte('\n')
	}
	if f.header == nil {
		_, err := buf.WriteTo(w)
		return err
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	var head bytes.Buffer
	// A template the column names cannot fill (it indexes a row's map,
	// say) gets the part of the header it made, as docker's does.
	_ = f.header.Execute(&head, f.headers)
	head.WriteByte('\n')
	if _, err := head.WriteTo(tw); err != nil {
		return err
	}
	if _, err := buf.WriteTo(tw); err != nil {
		return err
	}
	return tw.Flush()
}

// writeJSONIndented prints v as docker's inspect does: indented by four
// spaces, with <, > and & as they are.
func writeJSONIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}
