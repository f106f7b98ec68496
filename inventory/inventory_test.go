package inventory

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	cases := map[string]string{
		"web1":           "web1",
		"web[1-3,5]":     "web1 web2 web3 web5",
		"db[01-03]":      "db01 db02 db03",
		"db[08-10]":      "db08 db09 db10",
		"r[1-2]n[1-2]":   "r1n1 r1n2 r2n1 r2n2",
		"x[7]y":          "x7y",
		"h[1-2].lan":     "h1.lan h2.lan",
		"web[ 1 - 2 ]":   "",
		"web[3-1]":       "",
		"web[1-3":        "",
		"web1-3]":        "",
		"web[]":          "",
		"web[a-b]":       "",
		"h[1-10001]":     "",
		"h[1-200][1-60]": "",
	}
	for in, want := range cases {
		got, err := Expand(in)
		if want == "" {
			if err == nil && in != "web[ 1 - 2 ]" {
				t.Errorf("Expand(%q) = %v, want an error", in, got)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("Expand(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := Expand("h[1-10000]"); err != nil {
		t.Errorf("10,000 names must be allowed: %v", err)
	}
	if _, err := Expand("h[1-10001]"); err == nil || !strings.Contains(err.Error(), "10,000") {
		t.Errorf("10,001 names: %v", err)
	}
}

func TestFold(t *testing.T) {
	cases := []struct{ in, want string }{
		{"web1 web2 web3 web5", "web[1-3,5]"},
		{"web5 web3 web1 web2", "web[1-3,5]"},
		{"web1", "web1"},
		{"db01 db02 db03 db04 db05 db06 db07 db08 db09 db10", "db[01-10]"},
		{"web1 db1 web2 db2 local", "web[1-2],db[1-2],local"},
		{"a.lan1 b", "a.lan1,b"},
		{"h1.lan h2.lan h4.lan", "h[1-2,4].lan"},
		{"web9 web10 web11", "web[9-11]"},
	}
	for _, c := range cases {
		if got := Fold(strings.Fields(c.in)); got != c.want {
			t.Errorf("Fold(%s) = %s, want %s", c.in, got, c.want)
		}
	}
	// Fold inverts Expand.
	for _, p := range []string{"web[1-3,5]", "db[01-10]", "n[1-50]"} {
		names, _ := Expand(p)
		if got := Fold(names); got != p {
			t.Errorf("Fold(Expand(%s)) = %s", p, got)
		}
	}
}

func TestSplitList(t *testing.T) {
	got := SplitList("web[1-3,5], db1 ,@all")
	if !slices.Equal(got, []string{"web[1-3,5]", "db1", "@all"}) {
		t.Fatal(got)
	}
}

const good = `
fanout = 8

[defaults]
port = 18812
token_file = "tok"

[[hosts]]
name = "web[1-4]"
address = "10.0.0.{n}"

[[hosts]]
name = "web5"
address = "web5.example.com:9000"
ns = "shared"
fingerprint = "sha256:abc"
plaintext = true

[[hosts]]
name = "db[01-10]"

[groups]
web = ["web[1-3]", "web5"]
db = ["db[01-10]"]
all = ["@web", "db", "web4"]
`

func TestParse(t *testing.T) {
	inv, err := Parse("/etc/x/config.toml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Fanout != 8 {
		t.Errorf("fanout %d", inv.Fanout)
	}
	h := inv.Host("web2")
	if h == nil || h.Addr != "10.0.0.2:18812" || h.TokenFile != filepath.Join("/etc/x", "tok") {
		t.Fatalf("web2: %+v", h)
	}
	if h := inv.Host("web5"); h.Addr != "web5.example.com:9000" || h.NS != "shared" || !h.Plaintext || h.Fingerprint != "sha256:abc" {
		t.Errorf("web5: %+v", h)
	}
	if h := inv.Host("db07"); h == nil || h.Addr != "db07:18812" {
		t.Errorf("db07: %+v", h)
	}
	all, _ := inv.Group("all")
	if got := Fold(all); got != "web[1-5],db[01-10]" {
		t.Errorf("@all = %s", got)
	}
	if g := inv.GroupNames(); !slices.Equal(g, []string{"all", "db", "web"}) {
		t.Errorf("groups %v", g)
	}
	ms, err := inv.Resolve("@web,web4,10.1.1.1:5,x=y:1,db[09-10]")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, m.Name+"="+m.Addr)
	}
	want := "web1=10.0.0.1:18812 web2=10.0.0.2:18812 web3=10.0.0.3:18812 web5=web5.example.com:9000 web4=10.0.0.4:18812 10.1.1.1:5=10.1.1.1:5 x=y:1 db09=db09:18812 db10=db10:18812"
	if strings.Join(names, " ") != want {
		t.Errorf("resolve:\n got %s\nwant %s", strings.Join(names, " "), want)
	}
	if _, err := inv.Resolve("@nope"); err == nil || !strings.Contains(err.Error(), "@web") {
		t.Errorf("unknown group: %v", err)
	}
	if !IsMulti("@web") || !IsMulti("a,b") || !IsMulti("web[1-2]") || IsMulti("web1") || IsMulti("[::1]:5") {
		t.Error("IsMulti")
	}
}

func TestBadConfig(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"syntax", "[[hosts]]\nname = \"a\"\naddress = \n", "x.toml:3:"},
		{"unknown key", "[[hosts]]\nname = \"a\"\nadress = \"b\"\n", `x.toml:3:1: unknown key "hosts.adress"`},
		{"unknown top key", "fanot = 3\n", `x.toml:1:1: unknown key "fanot"`},
		{"duplicate", "[[hosts]]\nname = \"a\"\n\n[[hosts]]\nname = \"a\"\n", "x.toml:4: duplicate host name a (first defined on line 1)"},
		{"duplicate in range", "[[hosts]]\nname = \"w[1-3]\"\n[[hosts]]\nname = \"w2\"\n", "x.toml:3: duplicate host name w2"},
		{"self group", "[[hosts]]\nname = \"a\"\n[groups]\nweb = [\"a\", \"@web\"]\n", "x.toml:4: group web includes itself (web → web)"},
		{"bare self group", "[[hosts]]\nname = \"a\"\n[groups]\nweb = [\"web\"]\n", "x.toml:4: group web includes itself"},
		{"cycle", "[[hosts]]\nname = \"a\"\n[groups]\nx = [\"@y\"]\ny = [\"@x\"]\n", "group x includes itself (x → y → x)"},
		{"unknown host", "[[hosts]]\nname = \"web1\"\n[groups]\nweb = [\"web1\", \"web2\"]\n", "x.toml:4: group web names unknown host web2 (did you mean web1?)"},
		{"unknown group", "[[hosts]]\nname = \"a\"\n[groups]\nweb = [\"@db\"]\n", "x.toml:4: group web names @db, which is not a group"},
		{"big range", "[[hosts]]\nname = \"h[1-20000]\"\naddress = \"{name}\"\n", "x.toml:1: host name \"h[1-20000]\" expands to more than 10,000"},
		{"big group range", "[[hosts]]\nname = \"a\"\n[groups]\ng = [\"h[0-99999]\"]\n", "x.toml:4: group g: \"h[0-99999]\" expands to more than 10,000"},
		{"no name", "[[hosts]]\naddress = \"x\"\n", "x.toml:1: a host needs a name"},
		{"one address", "[[hosts]]\nname = \"w[1-2]\"\naddress = \"x\"\n", "put {name} or {n} in the address"},
		{"group named like host", "[[hosts]]\nname = \"a\"\n[groups]\na = [\"a\"]\n", "group a has the name of a host"},
		{"bad name", "[[hosts]]\nname = \"a b\"\n", "host name \"a b\""},
	}
	for _, c := range cases {
		_, err := Parse("x.toml", []byte(c.text))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestLoadOptional(t *testing.T) {
	dir := t.TempDir()
	inv, err := LoadOptional(filepath.Join(dir, "none.toml"))
	if err != nil || len(inv.Hosts()) != 0 {
		t.Fatal(inv, err)
	}
	p := filepath.Join(dir, "c.toml")
	os.WriteFile(p, []byte(good), 0o600)
	if inv, err = Load(p); err != nil || len(inv.Hosts()) != 15 {
		t.Fatal(err)
	}
}
