package cli_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/security"
	"github.com/chromedp/chromedp"

	"github.com/boxagent/boxagent/cmd/boxagent/apitype"
	"github.com/boxagent/boxagent/cmd/boxagent/daemon"
)

// Issue 17, findings 1-3: who may use the API over TCP and the socket,
// what a reload may leave open, and what parallel logins cost.

// password is the page password the agent made at its first start.
func (p *agentProc) password() string {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(p.root, "var/lib/boxagent/http-password"))
	if err != nil {
		p.t.Fatalf("the generated page password: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// login logs a web client in and returns it with its CSRF token.
func (p *agentProc) login(pass string) (*webClient, string) {
	p.t.Helper()
	c := newWebClient(p.t, p.http)
	code, body, _ := c.do("POST", "/api/v1/login", `{"password":`+strconv.Quote(pass)+`}`)
	var info apitype.SessionInfo
	json.Unmarshal([]byte(body), &info)
	if code != http.StatusOK || info.CSRF == "" {
		p.t.Fatalf("login: %d %s", code, body)
	}
	return c, info.CSRF
}

// asNobody runs this test binary as user nobody with args; the binary is
// copied where nobody may run it. It prints what httpProbe or the CLI
// printed, and the exit code.
func asNobody(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as nobody")
	}
	dir, err := os.MkdirTemp("", "boxagent-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "boxagent")
	if _, err := os.Stat(bin); err != nil {
		src, err := os.Open(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(dst, src)
		src.Close()
		dst.Close()
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{"HOME=/", "TERM=dumb", "BOXAGENT_AS_MAIN=1"}, env...)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// httpProbe is the child's side of asNobody with BOXAGENT_TEST_HTTP=1:
// METHOD URL [Header: value]… ; it prints the status line and the body.
func httpProbe(args []string) int {
	req, err := http.NewRequest(args[0], args[1], nil)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	for _, h := range args[2:] {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\n", resp.StatusCode, b)
	return 0
}

// TestTCPNeedsASessionFromAnyLocalUser: with no config at all (loopback,
// no password: the package's default), user nobody on the box posted a
// reload over 127.0.0.1 with the X-Boxagent-Request header and got 200.
// Now every TCP call needs a session with the password the agent made.
func TestTCPNeedsASessionFromAnyLocalUser(t *testing.T) {
	root := t.TempDir()
	p := startAgent(t, root)
	url := "http://" + p.http
	probe := []string{"BOXAGENT_TEST_HTTP=1"}

	out, _ := asNobody(t, probe, "POST", url+"/api/v1/config/reload", apitype.CSRFHeader+": 1")
	if !strings.HasPrefix(out, "401 ") || !strings.Contains(out, "auth.required") {
		t.Errorf("nobody posted a reload over loopback: %s", out)
	}
	out, _ = asNobody(t, probe, "GET", url+"/api/v1/operations")
	if !strings.HasPrefix(out, "401 ") {
		t.Errorf("nobody read the journal over loopback: %s", out)
	}
	// A DNS-rebinding page sends its own name: refused before anything.
	c := newWebClient(t, p.http)
	for _, path := range []string{"/api/v1/status", "/login.html", "/api/v1/session"} {
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Host = "rebind.attacker.example:8080"
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "auth.host") {
			t.Errorf("%s with a foreign Host: %d %s", path, resp.StatusCode, b)
		}
	}

	// The password: made at the first start, 0600, on the console once,
	// and by `boxagent config password` for root only.
	pass := p.password()
	fi, err := os.Stat(filepath.Join(root, "var/lib/boxagent/http-password"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the password file: %v %v", fi.Mode(), err)
	}
	if !strings.Contains(p.stderr.String(), pass) {
		t.Errorf("the console (log) does not show the new password")
	}
	if out, _, code := runCLI(t, "config", "password", "--root", root); code != 0 || strings.TrimSpace(out) != pass {
		t.Errorf("config password: exit %d %q", code, out)
	}
	if out, code := asNobody(t, nil, "config", "password", "--root", root); code == 0 || strings.Contains(out, pass) {
		t.Errorf("nobody read the password: exit %d %q", code, out)
	}

	// With the session: reads, and changes with its CSRF token only.
	wc, csrf := p.login(pass)
	if code, body, _ := wc.do("GET", "/api/v1/status", ""); code != http.StatusOK {
		t.Errorf("status after login: %d %s", code, body)
	}
	if code, _, _ := wc.do("POST", "/api/v1/config/reload", "", apitype.CSRFHeader, "1"); code != http.StatusForbidden {
		t.Errorf("reload without the CSRF token: %d", code)
	}
	code, body, _ := wc.do("POST", "/api/v1/config/reload", "", apitype.CSRFTokenHeader, csrf)
	if code != http.StatusOK || !strings.Contains(body, `"origin": "web"`) {
		t.Errorf("reload with the session: %d %s", code, body)
	}

	// A restart keeps the password and does not print it again.
	p.cmd.Process.Kill()
	<-p.exited
	p2 := startAgent(t, root)
	if p2.password() != pass || strings.Contains(p2.stderr.String(), pass) {
		t.Errorf("after a restart: password kept %v, printed again %v", p2.password() == pass, strings.Contains(p2.stderr.String(), pass))
	}
}

// TestSocketChecksThePeer: the socket's mode is the first gate; made
// world-writable, the peer's credentials still keep nobody out.
func TestSocketChecksThePeer(t *testing.T) {
	root := t.TempDir()
	p := startAgent(t, root)
	for d := p.socket; d != filepath.Dir(root); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	os.Chmod(filepath.Dir(root), 0o755)
	os.Chmod(p.socket, 0o666)
	out, code := asNobody(t, nil, "status", "--socket", p.socket)
	if code == 0 || !strings.Contains(out, "may not use the agent") {
		t.Errorf("nobody on a 0666 socket: exit %d\n%s", code, out)
	}
	if !p.stderr.waitFor("refused a client of the API socket", 10*time.Second) {
		t.Errorf("the refusal is not logged")
	}
	if _, _, code := p.run("status"); code != 0 {
		t.Errorf("root's status: exit %d", code)
	}
}

// TestReloadCannotOpenTheLAN: started on every address with a password,
// a reload of a file with loopback and no password left the LAN listener
// bound and open to changes without a login. Now the reload is refused;
// a reload that changes the password ends every session. The listener is
// HTTPS (self-signed, its fingerprint in status) with Secure cookies.
func TestReloadCannotOpenTheLAN(t *testing.T) {
	root := t.TempDir()
	cfg := writeConfig(t, root, "[http]\nlisten = \"0.0.0.0:0\"\npassword_hash = \""+demoHash+"\"\n")
	p := startAgent(t, root, "--listen", "0.0.0.0:0")
	_, port, _ := net.SplitHostPort(p.http)
	p.http = "127.0.0.1:" + port

	// Beyond loopback the page is HTTPS, with the certificate whose
	// fingerprint status shows on the console.
	out, _, _ := p.run("status")
	fp := ""
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "certificate:"); ok {
			fp = strings.Fields(v)[1]
		}
	}
	if !strings.Contains(out, "https://") || len(fp) != 95 {
		t.Fatalf("status of a LAN listener:\n%s", out)
	}
	pinned := func(c *webClient) *webClient {
		c.base = "https://" + p.http
		c.http.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if daemon.CertFingerprint(raw[0]) != fp {
					return fmt.Errorf("certificate %s, status says %s", daemon.CertFingerprint(raw[0]), fp)
				}
				return nil
			}}}
		return c
	}
	if resp, err := http.Get("http://" + p.http + "/login.html"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP served on a LAN listener")
		}
	}
	wc := pinned(newWebClient(t, p.http))
	code, body, h := wc.do("POST", "/api/v1/login", `{"password":"boxagent"}`)
	var info apitype.SessionInfo
	json.Unmarshal([]byte(body), &info)
	csrf := info.CSRF
	if code != http.StatusOK || csrf == "" || !strings.Contains(h.Get("Set-Cookie"), "Secure") {
		t.Fatalf("login over HTTPS: %d %s (cookie %q)", code, body, h.Get("Set-Cookie"))
	}

	os.WriteFile(cfg, []byte("[http]\nlisten = \"127.0.0.1:8080\"\n"), 0o600)
	_, stderr, code := p.run("config", "reload")
	if code == 0 || !strings.Contains(stderr, "reachable from the network") {
		t.Errorf("reload without a password on a LAN listener: exit %d %s", code, stderr)
	}
	anon := pinned(newWebClient(t, p.http))
	if code, body, _ := anon.do("POST", "/api/v1/config/reload", "", apitype.CSRFHeader, "1"); code != http.StatusUnauthorized {
		t.Errorf("a change without login after the reload: %d %s", code, body)
	}
	// SIGHUP goes the same way.
	p.cmd.Process.Signal(syscall.SIGHUP)
	if !p.stderr.waitFor("config reload refused", 10*time.Second) {
		t.Errorf("SIGHUP's reload was not refused")
	}
	if code, body, _ := anon.do("POST", "/api/v1/config/reload", "", apitype.CSRFHeader, "1"); code != http.StatusUnauthorized {
		t.Errorf("a change without login after SIGHUP: %d %s", code, body)
	}
	if code, _, _ := wc.do("GET", "/api/v1/status", ""); code != http.StatusOK {
		t.Errorf("the session ended on a refused reload: %d", code)
	}

	// A new password: the old sessions end with the old password.
	newHash := strings.TrimSpace(runOK(t, "another password\n", "config", "hash-password"))
	os.WriteFile(cfg, []byte("[http]\nlisten = \"0.0.0.0:0\"\npassword_hash = \""+newHash+"\"\n"), 0o600)
	if out, stderr, code := p.run("config", "reload"); code != 0 || !strings.Contains(out, "every page session ended") {
		t.Errorf("reload with a new password: exit %d %s %s", code, out, stderr)
	}
	if code, _, _ := wc.do("POST", "/api/v1/config/reload", "", apitype.CSRFTokenHeader, csrf); code != http.StatusUnauthorized {
		t.Errorf("a session of the old password after the change: %d", code)
	}
	if code, body, _ := pinned(newWebClient(t, p.http)).do("POST", "/api/v1/login", `{"password":"another password"}`); code != http.StatusOK {
		t.Errorf("login with the new password: %d %s", code, body)
	}
}

func runOK(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := boxagentCmd(args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return string(out)
}

// vmHWM is a process's peak resident set in KiB.
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestParallelLoginsAreRationed: 16 parallel wrong logins ran 16 argon2id
// checks (64 MiB each: RSS 151 MB → 1.08 GB). Now one client has one
// attempt in flight (the rest 429 at once) and the agent runs one check
// at a time whatever the number of clients; its peak RSS grows by about
// one check.
func TestParallelLoginsAreRationed(t *testing.T) {
	root := t.TempDir()
	writeConfig(t, root, "[http]\nlisten = \"127.0.0.1:0\"\npassword_hash = \""+demoHash+"\"\n")
	p := startAgent(t, root)
	pid := p.cmd.Process.Pid
	before := vmHWM(t, pid)

	attempt := func(local string) int {
		d := &net.Dialer{}
		if local != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
		}
		hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 60 * time.Second}
		resp, err := hc.Post("http://"+p.http+"/api/v1/login", "application/json", strings.NewReader(`{"password":"wrong"}`))
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	run := func(local func(i int) string) map[int]int {
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				c := attempt(local(i))
				mu.Lock()
				codes[c]++
				mu.Unlock()
			}(i)
		}
		close(start)
		wg.Wait()
		return codes
	}
	one := run(func(int) string { return "" })
	if one[http.StatusTooManyRequests] < 30 {
		t.Errorf("32 parallel wrong logins from one address: %v, want at least 30 answered 429", one)
	}
	// 32 addresses (127.0.0.2-33): each has its slot, the checks queue.
	many := run(func(i int) string { return fmt.Sprintf("127.0.0.%d", 2+i) })
	after := vmHWM(t, pid)
	t.Logf("VmHWM %d KiB before, %d KiB after 2×32 parallel wrong logins (one address: %v; 32 addresses: %v)", before, after, one, many)
	if many[http.StatusUnauthorized]+many[http.StatusTooManyRequests] != 32 {
		t.Errorf("32 addresses: %v", many)
	}
	// One check of this hash is 64 MiB; allow two and the garbage
	// collector's slack, far below 32 checks' 2 GiB.
	if grew := after - before; grew > 160*1024 {
		t.Errorf("peak RSS grew by %d MiB under parallel logins", grew/1024)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		t.Errorf("the agent died: %v", err)
	}
}

// TestBrowserOverHTTPS: a page beyond loopback (make demo's) is HTTPS;
// Chromium, told to accept the self-signed certificate as a user would,
// logs in, and the event stream runs over TLS.
func TestBrowserOverHTTPS(t *testing.T) {
	root := t.TempDir()
	writeConfig(t, root, "[http]\nlisten = \"0.0.0.0:0\"\npassword_hash = \""+demoHash+"\"\n")
	p := startAgent(t, root, "--listen", "0.0.0.0:0")
	_, port, _ := net.SplitHostPort(p.http)
	ctx := newBrowser(t)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, security.SetIgnoreCertificateErrors, security.SetIgnoreCertificateErrorsParams{Ignore: true}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "overview", "log in over HTTPS",
		chromedp.Navigate("https://localhost:"+port+"/"),
		chromedp.WaitVisible(chromedp.CSS("#password")),
		chromedp.SendKeys(chromedp.CSS("#password"), "boxagent"),
		chromedp.Click(chromedp.CSS("#submit")),
		chromedp.WaitVisible(chromedp.CSS("#status table")))
	if _, stderr, code := p.run("config", "reload"); code != 0 {
		t.Fatalf("reload: %s", stderr)
	}
	do(t, ctx, "overview", "the reload arrives on the event stream",
		chromedp.WaitVisible(`//div[@id="events"][contains(text(),"config.reload")]`))
}
