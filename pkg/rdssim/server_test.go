package rdssim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

func newKeyFile(t *testing.T, dir string) (string, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "key")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return path, signer.PublicKey()
}

func TestAuthentication(t *testing.T) {
	s := startSim(t, Config{})
	if _, err := dialErr(s, "admin", s.ClientKeyFile()); err != nil {
		t.Fatalf("generated client key refused: %v", err)
	}
	if _, err := dialErr(s, "root", s.ClientKeyFile()); err == nil {
		t.Error("another user name was accepted")
	}
	other, _ := newKeyFile(t, t.TempDir())
	if _, err := dialErr(s, "admin", other); err == nil {
		t.Error("an unknown key was accepted")
	}

	// With an authorized keys file, exactly those keys (and that user) work.
	dir := t.TempDir()
	keyFile, pub := newKeyFile(t, t.TempDir())
	auth := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(auth, append([]byte("# comment\n"), ssh.MarshalAuthorizedKey(pub)...), 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := startSim(t, Config{User: "csi", AuthorizedKeysFile: auth})
	if s2.ClientKeyFile() != "" {
		t.Errorf("ClientKeyFile = %q, want none with an authorized keys file", s2.ClientKeyFile())
	}
	if c, err := dialErr(s2, "csi", keyFile); err != nil {
		t.Errorf("authorized key refused: %v", err)
	} else {
		c.Close()
	}
	if _, err := dialErr(s2, "admin", keyFile); err == nil {
		t.Error("default user accepted although User is csi")
	}
	if _, err := New(Config{Listen: "127.0.0.1:0", DataDir: t.TempDir(), AuthorizedKeysFile: filepath.Join(dir, "missing")}); err == nil {
		t.Error("New accepted a missing authorized keys file")
	}
}

func TestKnownHostsAndKeysPersist(t *testing.T) {
	dir := t.TempDir()
	s := startSim(t, Config{DataDir: dir})
	line, err := os.ReadFile(s.KnownHostsFile())
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(s.Addr())
	want := regexp.MustCompile(`^\[127\.0\.0\.1\]:` + port + ` ssh-ed25519 [A-Za-z0-9+/=]+\n$`)
	if !want.Match(line) {
		t.Errorf("known_hosts line %q", line)
	}
	key1 := s.HostPublicKey().Marshal()
	client1, _ := os.ReadFile(s.ClientKeyFile())
	if info, err := os.Stat(s.ClientKeyFile()); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("client key mode: %v %v", info.Mode(), err)
	}
	pubLine, err := os.ReadFile(s.ClientKeyFile() + ".pub")
	if err != nil || !strings.HasPrefix(string(pubLine), "ssh-ed25519 ") {
		t.Errorf("client_key.pub: %q %v", pubLine, err)
	}
	s.Close()

	s2 := startSim(t, Config{DataDir: dir})
	if !bytes.Equal(s2.HostPublicKey().Marshal(), key1) {
		t.Error("host key changed across a restart")
	}
	if client2, _ := os.ReadFile(s2.ClientKeyFile()); !bytes.Equal(client1, client2) {
		t.Error("client key changed across a restart")
	}
	dial(t, s2) // the same key files still work against the new port
}

func TestKnownHostsLine(t *testing.T) {
	signer, _, err := loadOrCreateKey(filepath.Join(t.TempDir(), "k"), "")
	if err != nil {
		t.Fatal(err)
	}
	for addr, host := range map[string]string{
		"127.0.0.1:2222": "[127.0.0.1]:2222", "127.0.0.1:22": "127.0.0.1", "0.0.0.0:2222": "[127.0.0.1]:2222",
		"[::1]:2222": "[::1]:2222",
	} {
		line, err := knownHostsLine(addr, signer.PublicKey())
		if err != nil || !strings.HasPrefix(line, host+" ssh-ed25519 ") {
			t.Errorf("knownHostsLine(%s) = %q, %v; want host %s", addr, line, err, host)
		}
	}
}

func TestOnlyExecIsServed(t *testing.T) {
	s := startSim(t, Config{})
	c := dial(t, s)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err == nil {
		t.Error("pty-req was granted")
	}
	if err := sess.Shell(); err == nil {
		t.Error("shell was granted")
	}
	if _, _, err := c.OpenChannel("direct-tcpip", nil); err == nil {
		t.Error("a direct-tcpip channel was accepted")
	}
	ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
	if err != nil || ok {
		t.Errorf("keepalive: ok=%v err=%v, want a plain false", ok, err)
	}
	// The connection is still usable afterwards.
	if out := mustRun(t, c, ":put ok"); out != "ok\r\n" {
		t.Errorf("after refusals: %q", out)
	}
	if v := string(c.ServerVersion()); v != "SSH-2.0-ROSSSH" {
		t.Errorf("server version %q", v)
	}
}

func TestConcurrentSessions(t *testing.T) {
	s := startSim(t, Config{})
	conns := []*ssh.Client{dial(t, s), dial(t, s), dial(t, s)}
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := conns[i%len(conns)]
			slot := fmt.Sprintf("vol-%02d", i)
			script := fmt.Sprintf("/disk add type=file file-path=pool/k8s/%s/disk.img file-size=1G slot=%s nvme-tcp-export=yes "+
				"nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:%s\n:put \"added\"\n/disk print detail where slot=\"%s\"", slot, slot, slot, slot)
			out, status, err := runErr(c, script)
			if err != nil {
				errs <- fmt.Errorf("%s: %w", slot, err)
				return
			}
			if status != 0 || !strings.HasPrefix(out, "added\r\n") || !strings.Contains(out, `slot="`+slot+`"`) {
				errs <- fmt.Errorf("%s: status %d output %q", slot, status, out)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	out := mustRun(t, conns[0], `/disk print terse where slot~"^vol-"`)
	if got := strings.Count(out, crlf); got != n {
		t.Errorf("%d disks listed, want %d", got, n)
	}
	// Indices are unique and increasing.
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(out, crlf), crlf) {
		idx := strings.Fields(line)[0]
		if seen[idx] {
			t.Errorf("index %s used twice", idx)
		}
		seen[idx] = true
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := startSim(t, Config{DataDir: dir, Width: 200})
	c := dial(t, s)
	mustRun(t, c, `/disk/btrfs/subvolume/add fs=pool-fs name=k8s/pvc-1`)
	mustRun(t, c, addPVC1)
	mustRun(t, c, `/disk add type=file file-path=pool/gone.img file-size=1M slot=gone; /disk remove gone`)
	host, _ := s.HostPath("pool/k8s/pvc-1/disk.img")
	writeAt(t, host, 1<<20, []byte("persistent data"))
	before := mustRun(t, c, `/disk print detail where slot=pvc-1`)
	subBefore := mustRun(t, c, `/disk/btrfs/subvolume/print detail`)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := startSim(t, Config{DataDir: dir, Width: 200})
	c2 := dial(t, s2)
	if after := mustRun(t, c2, `/disk print detail where slot=pvc-1`); after != before {
		t.Errorf("disk changed across restart:\n%s\nvs\n%s", before, after)
	}
	if after := mustRun(t, c2, `/disk/btrfs/subvolume/print detail`); after != subBefore {
		t.Errorf("subvolumes changed across restart:\n%s\nvs\n%s", subBefore, after)
	}
	data := make([]byte, 15)
	f, err := os.Open(host)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.ReadAt(data, 1<<20); err != nil || string(data) != "persistent data" {
		t.Errorf("data after restart: %q %v", data, err)
	}
	// Indices are never reused: the removed disk had 2, the next one gets 3.
	mustRun(t, c2, `/disk add type=file file-path=pool/next.img file-size=1M slot=next`)
	if out := mustRun(t, c2, `/disk print terse where slot=next`); !strings.HasPrefix(out, " 3 B") {
		t.Errorf("index after restart: %q", out)
	}
	if _, err := New(Config{Listen: "127.0.0.1:0", DataDir: dir, PoolName: "raid10"}); err == nil {
		t.Error("New accepted a pool name that differs from the data directory's")
	}
	if _, err := New(Config{Listen: "127.0.0.1:0", DataDir: dir, PoolFS: "xfs"}); err == nil {
		t.Error("New accepted a pool filesystem that differs from the data directory's")
	}
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no data dir":   {Listen: "127.0.0.1:0"},
		"no listen":     {DataDir: t.TempDir()},
		"bad fs":        {Listen: "127.0.0.1:0", DataDir: t.TempDir(), PoolFS: "ext4"},
		"narrow":        {Listen: "127.0.0.1:0", DataDir: t.TempDir(), Width: 10},
		"pool name":     {Listen: "127.0.0.1:0", DataDir: t.TempDir(), PoolName: "a/b"},
		"negative size": {Listen: "127.0.0.1:0", DataDir: t.TempDir(), PoolSize: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
	s := startSim(t, Config{})
	if err := s.Start(); err == nil {
		t.Error("a second Start succeeded")
	}
}

func TestCommandLog(t *testing.T) {
	var log syncBuffer
	s := startSim(t, Config{Log: &log})
	c := dial(t, s)
	mustRun(t, c, "/disk/print detail where slot=x\n:put done")
	run(t, c, "/disk addd")
	got := log.String()
	for _, want := range []string{
		"rds-sim: cmd user=admin /disk print detail where slot=x\n",
		"rds-sim: cmd user=admin :put done\n",
		"rds-sim: exec user=admin\n",
		"rds-sim: rejected user=admin /disk addd: bad command name addd (line 1 column 7)\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	if cmds := s.Commands(); len(cmds) != 3 || cmds[0] != "/disk print detail where slot=x" {
		t.Errorf("Commands() = %q", cmds)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// recordingExporter is a fake Exporter that remembers its calls.
type recordingExporter struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (e *recordingExporter) Export(nqn string, port int, hostPath string, hosts []string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	call := fmt.Sprintf("export %s %d %s", nqn, port, filepath.Base(filepath.Dir(hostPath))+"/"+filepath.Base(hostPath))
	if hosts != nil {
		call += " hosts=" + strings.Join(hosts, ",")
	}
	e.calls = append(e.calls, call)
	return e.fail
}

func (e *recordingExporter) Unexport(nqn string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, "unexport "+nqn)
	return nil
}

func (e *recordingExporter) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.calls
	e.calls = nil
	return c
}

func TestExporterSeam(t *testing.T) {
	dir := t.TempDir()
	exp := &recordingExporter{}
	s := startSim(t, Config{DataDir: dir, Exporter: exp})
	c := dial(t, s)
	steps := []struct {
		script string
		want   []string
	}{
		{addPVC1, []string{"export nqn.2000-02.com.mikrotik:pvc-1 4420 pvc-1/disk.img"}},
		{`/disk add type=file file-path=pool/plain.img file-size=1M slot=plain`, nil},
		{`/disk set pvc-1 file-size=11G`, []string{"export nqn.2000-02.com.mikrotik:pvc-1 4420 pvc-1/disk.img"}},
		{`/disk set pvc-1 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:new`,
			[]string{"unexport nqn.2000-02.com.mikrotik:pvc-1", "export nqn.2000-02.com.mikrotik:new 4420 pvc-1/disk.img"}},
		{`/disk set pvc-1 nvme-tcp-export=no`, []string{"unexport nqn.2000-02.com.mikrotik:new"}},
		{`/disk set pvc-1 nvme-tcp-export=yes nvme-tcp-server-port=4421`, []string{"export nqn.2000-02.com.mikrotik:new 4421 pvc-1/disk.img"}},
		{`/disk set plain nvme-tcp-export=yes`, []string{"export plain 4420 pool/plain.img"}},
		{`/disk remove plain`, []string{"unexport plain"}},
	}
	for _, st := range steps {
		mustRun(t, c, st.script)
		if got := exp.take(); strings.Join(got, "|") != strings.Join(st.want, "|") {
			t.Errorf("%s: exporter calls %q, want %q", st.script, got, st.want)
		}
	}
	s.Close()
	if got := exp.take(); strings.Join(got, "|") != "unexport nqn.2000-02.com.mikrotik:new" {
		t.Errorf("Close: exporter calls %q", got)
	}
	s2 := startSim(t, Config{DataDir: dir, Exporter: exp})
	if got := exp.take(); strings.Join(got, "|") != "export nqn.2000-02.com.mikrotik:new 4421 pvc-1/disk.img" {
		t.Errorf("Start: exporter calls %q", got)
	}
	exp.fail = errors.New("configfs is read-only")
	c2 := dial(t, s2)
	out, status := run(t, c2, `/disk add type=file file-path=pool/e.img file-size=1M slot=e nvme-tcp-export=yes`)
	if status != 1 || out != "failure: nvme-tcp export failed: configfs is read-only"+crlf {
		t.Errorf("failing export: %d %q", status, out)
	}
	if out := mustRun(t, c2, `/disk print detail where slot=e`); strings.Contains(out, "slot=") {
		t.Errorf("a disk whose export failed was kept:\n%s", out)
	}
}
