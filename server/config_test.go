package server

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    func(*Config) // changes to DefaultConfig; nil when an error is expected
		wantErr string
	}{
		{
			name: "good",
			yaml: `version: 1
daemon: false
pid_file: /run/gotthard.pid
error_log: /var/log/gotthard.log
upgrade_sock: /run/gotthard_upgrade.sock
threads: 4
grace_period_seconds: 10
graceful_shutdown_timeout_seconds: 15
upstream_keepalive_pool_size: 64
max_retries: 2
ca_file: /etc/ssl/ca.pem
client_bind_to_ipv4: [192.0.2.1]
`,
			want: func(c *Config) {
				c.PidFile = "/run/gotthard.pid"
				c.ErrorLog = "/var/log/gotthard.log"
				c.UpgradeSock = "/run/gotthard_upgrade.sock"
				c.Threads = 4
				c.GracePeriodSeconds = 10
				c.GracefulShutdownTimeoutSeconds = 15
				c.UpstreamKeepalivePoolSize = 64
				c.MaxRetries = 2
				c.CaFile = "/etc/ssl/ca.pem"
				c.ClientBindToIPv4 = []string{"192.0.2.1"}
			},
		},
		{name: "empty", yaml: "", want: func(*Config) {}},
		{name: "comment only", yaml: "# nothing\n", want: func(*Config) {}},
		{
			name:    "unknown key",
			yaml:    "version: 1\ndaemon: false\npid_fle: /tmp/x.pid\n",
			wantErr: `server: conf.yaml:3: unknown key "pid_fle"`,
		},
		{
			name:    "wrong type",
			yaml:    "version: 1\nthreads: four\n",
			wantErr: `server: conf.yaml:2: key "threads": want int, got !!str ` + "`four`",
		},
		{
			name:    "negative timeout",
			yaml:    "version: 1\n\ngraceful_shutdown_timeout_seconds: -5\n",
			wantErr: `server: conf.yaml:3: key "graceful_shutdown_timeout_seconds": must not be negative, got -5`,
		},
		{
			name:    "user not supported",
			yaml:    "user: nobody\n",
			wantErr: `server: conf.yaml:1: key "user": switching user is not supported yet`,
		},
		{
			name:    "bad version",
			yaml:    "version: 2\n",
			wantErr: `server: conf.yaml:1: key "version": unsupported version 2`,
		},
		{
			name:    "syntax error",
			yaml:    "version: 1\n  pid_file: [\n",
			wantErr: `server: conf.yaml:`,
		},
		{
			name:    "not a mapping",
			yaml:    "- a\n- b\n",
			wantErr: `server: conf.yaml:1: want a mapping of keys, got !!seq`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig(strings.NewReader(tt.yaml), "conf.yaml")
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("ParseConfig error = %v, want prefix %q", err, tt.wantErr)
				}
				var ce *ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("error %v is not a *ConfigError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig()
			tt.want(want)
			if !reflect.DeepEqual(got.clone(), want.clone()) {
				t.Fatalf("config = %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestUnknownKeyIsErrUnknownKey(t *testing.T) {
	_, err := ParseConfig(strings.NewReader("pid_file: /x\nthreds: 2\n"), "c.yaml")
	var ce *ConfigError
	if !errors.Is(err, ErrUnknownKey) || !errors.As(err, &ce) || ce.Key != "threds" || ce.Line != 2 {
		t.Fatalf("error = %#v, want ErrUnknownKey for threds at line 2", err)
	}
}

func TestLoadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conf.yaml")
	if err := os.WriteFile(path, []byte("pid_file: /tmp/g.pid\nmax_retries: -2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	if err == nil || err.Error() != `server: `+path+`:2: key "max_retries": must be -1 (off) or more, got -2` {
		t.Fatalf("LoadConfig = %v", err)
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadConfig of a missing file = %v, want ErrNotExist", err)
	}
}

func TestValidateFromCode(t *testing.T) {
	c := DefaultConfig()
	c.Threads = -1
	c.GracePeriodSeconds = -2
	err := c.Validate()
	for _, want := range []string{
		`server: config: key "threads": must not be negative, got -1`,
		`server: config: key "grace_period_seconds": must not be negative, got -2`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to contain %q", err, want)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

func TestConfigCopied(t *testing.T) {
	c := DefaultConfig()
	c.ClientBindToIPv4 = []string{"192.0.2.1"}
	srv, err := New(Options{Config: c})
	if err != nil {
		t.Fatal(err)
	}
	c.ClientBindToIPv4[0] = "changed"
	c.MaxRetries = 9
	got := srv.Config()
	if got.ClientBindToIPv4[0] != "192.0.2.1" || got.MaxRetries != 0 {
		t.Fatalf("Server config changed with the caller's: %+v", got)
	}
}

func TestParseConfigReportsEveryProblem(t *testing.T) {
	_, err := ParseConfig(strings.NewReader("threads: four\nmax_retries: x\npid_fle: y\n"), "c.yaml")
	for _, want := range []string{`c.yaml:1: key "threads"`, `c.yaml:2: key "max_retries"`, `c.yaml:3: unknown key "pid_fle"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error = %v, want it to contain %q", err, want)
		}
	}
}
