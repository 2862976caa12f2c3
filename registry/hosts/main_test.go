package hosts_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// credentialStoreEnv, when set, makes the test binary a docker credential
// helper keeping its credentials in the JSON file it names.
const credentialStoreEnv = "HOSTS_TEST_CREDENTIAL_STORE"

func TestMain(m *testing.M) {
	if store := os.Getenv(credentialStoreEnv); store != "" {
		os.Exit(credentialHelper(store, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// storedCredential is one entry of the fake helper's store.
type storedCredential struct {
	Username, Secret string
}

// credentialHelper speaks docker's credential helper protocol (get, store,
// erase, list) over stdin and stdout.
func credentialHelper(store string, args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: docker-credential-test get|store|erase|list")
		return 2
	}
	creds := map[string]storedCredential{}
	if b, err := os.ReadFile(store); err == nil {
		if err := json.Unmarshal(b, &creds); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	save := func() int {
		b, _ := json.Marshal(creds)
		if err := os.WriteFile(store, b, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	switch args[0] {
	case "store":
		var c struct{ ServerURL, Username, Secret string }
		if err := json.Unmarshal(in, &c); err != nil {
			fmt.Fprintln(os.Stdout, err)
			return 1
		}
		creds[c.ServerURL] = storedCredential{c.Username, c.Secret}
		return save()
	case "get":
		url := strings.TrimSpace(string(in))
		c, ok := creds[url]
		if !ok {
			fmt.Fprint(os.Stdout, "credentials not found in native keychain")
			return 1
		}
		json.NewEncoder(os.Stdout).Encode(map[string]string{"ServerURL": url, "Username": c.Username, "Secret": c.Secret})
		return 0
	case "erase":
		url := strings.TrimSpace(string(in))
		if _, ok := creds[url]; !ok {
			fmt.Fprint(os.Stdout, "credentials not found in native keychain")
			return 1
		}
		delete(creds, url)
		return save()
	case "list":
		out := map[string]string{}
		for url, c := range creds {
			out[url] = c.Username
		}
		json.NewEncoder(os.Stdout).Encode(out)
		return 0
	}
	fmt.Fprintf(os.Stdout, "unknown action %q", args[0])
	return 1
}

// fakeHelper installs docker-credential-test on PATH for the rest of the
// test and returns the file where it keeps credentials.
func fakeHelper(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := filepath.Join(dir, "store.json")
	script := fmt.Sprintf("#!/bin/sh\n%s=%q exec %q \"$@\"\n", credentialStoreEnv, store, exe)
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-test"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return store
}

// helperStore reads the fake helper's credentials.
func helperStore(t *testing.T, store string) map[string]storedCredential {
	t.Helper()
	creds := map[string]storedCredential{}
	b, err := os.ReadFile(store)
	if os.IsNotExist(err) {
		return creds
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &creds); err != nil {
		t.Fatal(err)
	}
	return creds
}

// writeDockerConfig writes config.json (any JSON value) into a new
// directory and returns the directory.
func writeDockerConfig(t *testing.T, cfg any) string {
	t.Helper()
	dir := t.TempDir()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// readDockerConfig decodes dir's config.json.
func readDockerConfig(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
