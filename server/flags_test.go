package server

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

func TestParseFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    Flags
		wantErr bool
	}{
		{name: "none", args: nil, want: Flags{}},
		{name: "short", args: []string{"-c", "a.yaml", "-d", "-u", "-t"}, want: Flags{Conf: "a.yaml", Daemon: true, Upgrade: true, Test: true}},
		{name: "long", args: []string{"--conf", "a.yaml", "--daemon", "--upgrade", "--test"}, want: Flags{Conf: "a.yaml", Daemon: true, Upgrade: true, Test: true}},
		{name: "equals", args: []string{"--conf=b.yaml", "-d=true"}, want: Flags{Conf: "b.yaml", Daemon: true}},
		{name: "single dash long", args: []string{"-conf", "c.yaml", "-upgrade"}, want: Flags{Conf: "c.yaml", Upgrade: true}},
		{name: "unknown flag", args: []string{"--verbose"}, wantErr: true},
		{name: "missing value", args: []string{"-c"}, wantErr: true},
		{name: "positional", args: []string{"-d", "extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFlags(tt.args)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseFlags(%q) error = %v, wantErr %v", tt.args, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("ParseFlags(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
	if _, err := ParseFlags([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("ParseFlags(-h) = %v, want flag.ErrHelp", err)
	}
}

func writeConf(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "conf.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNewFromArgs(t *testing.T) {
	good := writeConf(t, "version: 1\nmax_retries: 3\n")
	bad := writeConf(t, "version: 1\nmax_retry: 3\n")

	srv, err := NewFromArgs([]string{"-t", "-c", good}, Options{})
	if err != nil {
		t.Fatalf("-t with a good config: %v", err)
	}
	if err := srv.Run(); !errors.Is(err, ErrConfigTested) {
		t.Errorf("-t with a good config: Run = %v, want ErrConfigTested", err)
	}
	_, err = NewFromArgs([]string{"--test", "--conf", bad}, Options{})
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Key != "max_retry" || ce.Line != 2 {
		t.Errorf("-t with a bad config = %v, want the unknown key at line 2", err)
	}
	if _, err := NewFromArgs([]string{"--bogus"}, Options{}); err == nil {
		t.Error("NewFromArgs accepted an unknown flag")
	}

	base := DefaultConfig()
	base.UpstreamKeepalivePoolSize = 32
	base.MaxRetries = 1
	srv, err = NewFromArgs([]string{"-c", good, "-d", "-u"}, Options{Config: base})
	if err != nil {
		t.Fatal(err)
	}
	cfg := srv.Config()
	if cfg.MaxRetries != 3 || cfg.UpstreamKeepalivePoolSize != 32 || !cfg.Daemon || !srv.upgrade {
		t.Fatalf("config = %+v, upgrade %v; want the file over the code's config, daemon and upgrade set", cfg, srv.upgrade)
	}
	if base.MaxRetries != 1 || base.Daemon {
		t.Fatalf("caller's config modified: %+v", base)
	}
}
