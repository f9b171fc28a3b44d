package server

import (
	"errors"
	"strings"
	"testing"
)

// appConfig is an application's own configuration, decoded from the server's file.
type appConfig struct {
	Listen  string `yaml:"listen"`
	Backend struct {
		Address string `yaml:"address"`
		Port    int    `yaml:"port"`
	} `yaml:"backend"`
	Routes []struct {
		Prefix string `yaml:"prefix"`
	} `yaml:"routes"`
	Keep string `yaml:"keep"` // not in the file: keeps its value
}

func TestParseConfigWithApp(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantErr []string // substrings, one per expected problem, in order
	}{
		{name: "server and app keys", yaml: "version: 1\nlisten: 127.0.0.1:6188\nmax_retries: 2\nbackend:\n  address: 10.0.0.1\n  port: 8080\nroutes:\n  - prefix: /api\n"},
		{name: "key neither knows", yaml: "version: 1\nlisten: x\nlistne: y\n",
			wantErr: []string{`conf.yaml:3: unknown key "listne"`}},
		{name: "nested unknown app key", yaml: "backend:\n  address: a\n  prot: 80\n",
			wantErr: []string{`conf.yaml:3: unknown key "backend.prot"`}},
		{name: "app type error", yaml: "version: 1\nbackend:\n  port: eighty\n",
			wantErr: []string{`conf.yaml:3: key "backend.port": want int, got !!str ` + "`eighty`"}},
		{name: "server type error and unknown key", yaml: "threads: many\nlisten: x\nbogus: 1\n",
			wantErr: []string{`conf.yaml:1: key "threads": want int`, `conf.yaml:3: unknown key "bogus"`}},
		{name: "server validation", yaml: "threads: -1\nlisten: x\n",
			wantErr: []string{`conf.yaml:1: key "threads": must not be negative`}},
		{name: "syntax error once", yaml: "listen: [x\n",
			wantErr: []string{`conf.yaml:`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := &appConfig{Keep: "code"}
			cfg, err := ParseConfigWithApp(strings.NewReader(tt.yaml), "conf.yaml", app)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.MaxRetries != 2 || app.Listen != "127.0.0.1:6188" || app.Backend.Port != 8080 ||
					app.Backend.Address != "10.0.0.1" || len(app.Routes) != 1 || app.Routes[0].Prefix != "/api" || app.Keep != "code" {
					t.Fatalf("config %+v, app %+v", cfg, app)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			msgs := strings.Split(err.Error(), "\n")
			if len(msgs) != len(tt.wantErr) {
				t.Fatalf("error %q: %d problems, want %d", err, len(msgs), len(tt.wantErr))
			}
			for i, w := range tt.wantErr {
				if !strings.Contains(msgs[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, msgs[i], w)
				}
				if strings.Count(msgs[i], "server:") != 1 {
					t.Errorf("problem %d = %q: prefix repeated", i, msgs[i])
				}
			}
		})
	}
}

func TestNewFromArgsApp(t *testing.T) {
	conf := writeConf(t, "version: 1\nlisten: 127.0.0.1:7000\nmax_retries: 1\n")
	var app appConfig
	srv, err := NewFromArgs([]string{"-c", conf}, Options{App: &app})
	if err != nil {
		t.Fatal(err)
	}
	if app.Listen != "127.0.0.1:7000" || srv.Config().MaxRetries != 1 {
		t.Fatalf("app %+v, config %+v", app, srv.Config())
	}

	bad := writeConf(t, "version: 1\nlisten: 127.0.0.1:7000\nlisten_addr: x\n")
	_, err = NewFromArgs([]string{"-t", "-c", bad}, Options{App: &app})
	var ce *ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, ErrUnknownKey) || ce.Key != "listen_addr" || ce.Line != 3 {
		t.Fatalf("err = %v, want the unknown key listen_addr at line 3", err)
	}
	// Without App the application's keys are unknown to the server.
	if _, err := NewFromArgs([]string{"-c", conf}, Options{}); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("without App: err = %v, want ErrUnknownKey", err)
	}
	for _, bad := range []any{app, (*appConfig)(nil), 3} {
		if _, err := NewFromArgs(nil, Options{App: bad}); err == nil || !strings.Contains(err.Error(), "Options.App") {
			t.Errorf("App %T: err = %v, want one naming Options.App", bad, err)
		}
		if _, err := New(Options{App: bad}); err == nil || strings.Count(err.Error(), "Options.App") != 1 {
			t.Errorf("New with App %T: err = %v, want one naming Options.App once", bad, err)
		}
	}
}
