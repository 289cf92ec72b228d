package replication

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestMintCerts(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "tls")
	if err := MintCerts(dir, []string{"127.0.0.1", "localhost", "broker.example", "::1"}); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{CAFile: 0o644, CAKeyFile: 0o600, ServerFile: 0o644, ServerKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v, want %v", name, err, fi.Mode(), mode)
		}
	}
	ca, srv := readCert(t, filepath.Join(dir, CAFile)), readCert(t, filepath.Join(dir, ServerFile))
	if !ca.IsCA || ca.NotAfter.Before(time.Now().AddDate(9, 11, 0)) {
		t.Errorf("CA: IsCA %v, valid until %v; want a CA for 10 years", ca.IsCA, ca.NotAfter)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, host := range []string{"127.0.0.1", "localhost", "broker.example", "::1"} {
		if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("server cert for %s: %v", host, err)
		}
	}
	if _, err := srv.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.2"}); err == nil {
		t.Error("server cert verifies for a host it does not name")
	}

	// A second run keeps the CA and renews the server certificate.
	caPEM, _ := os.ReadFile(filepath.Join(dir, CAFile))
	if err := MintCerts(dir, []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	caPEM2, _ := os.ReadFile(filepath.Join(dir, CAFile))
	srv2 := readCert(t, filepath.Join(dir, ServerFile))
	if !bytes.Equal(caPEM, caPEM2) || srv2.SerialNumber.Cmp(srv.SerialNumber) == 0 {
		t.Error("second MintCerts: want the same CA and a new server certificate")
	}
	if _, err := srv2.Verify(x509.VerifyOptions{Roots: roots, DNSName: "localhost"}); err != nil {
		t.Errorf("renewed server cert: %v", err)
	}
	if err := MintCerts(t.TempDir(), nil); err == nil {
		t.Error("MintCerts with no hosts: no error")
	}
}

// TestClientTLSConfig: a client with ClientTLSConfig(ca) completes a
// handshake with a server using the minted certificate; with another CA,
// it refuses the server.
func TestClientTLSConfig(t *testing.T) {
	t.Parallel()
	dir, other := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, other} {
		if err := MintCerts(d, []string{"127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
	}
	srvConf, err := serverTLSConfig(filepath.Join(dir, ServerFile), filepath.Join(dir, ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvConf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				c.(*tls.Conn).Handshake()
			}()
		}
	}()
	dial := func(caDir string) error {
		conf, err := ClientTLSConfig(filepath.Join(caDir, CAFile))
		if err != nil {
			t.Fatal(err)
		}
		d := &net.Dialer{Timeout: 5 * time.Second}
		c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), conf)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(dir); err != nil {
		t.Errorf("with the right CA: %v", err)
	}
	if err := dial(other); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("with another CA: %v, want a certificate error", err)
	}

	if _, err := ClientTLSConfig(filepath.Join(dir, "missing.pem")); err == nil {
		t.Error("missing CA file: no error")
	}
	if _, err := ClientTLSConfig(filepath.Join(dir, ServerKeyFile)); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("a key as CA file: %v", err)
	}
}
