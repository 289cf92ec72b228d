package replication

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The files MintCerts writes into its directory.
const (
	CAFile        = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	ServerFile    = "server.pem"
	ServerKeyFile = "server-key.pem"
)

// MintCerts writes a demo certificate authority and a broker certificate
// signed by it into dir (created 0700 if missing): ca.pem, ca-key.pem,
// server.pem and server-key.pem, ECDSA P-256 keys in PKCS#8 PEM (mode
// 0600), certificates in PEM (0644). The CA is valid for 10 years, the
// server certificate for 825 days (the most strict TLS clients accept),
// with a subject alternative name for each of hosts: IP addresses as IP
// SANs, anything else as a DNS name.
//
// An existing ca.pem and ca-key.pem in dir are kept and sign the new
// server certificate, so renewing it does not change what edges trust.
// Give edges ca.pem (ClientTLSConfig) and the broker server.pem and
// server-key.pem; keep ca-key.pem off the network.
func MintCerts(dir string, hosts []string) error {
	if len(hosts) == 0 {
		return errors.New("mint certs: no hosts for the server certificate")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("mint certs: %w", err)
	}
	ca, caKey, err := loadCA(dir)
	if err != nil {
		return fmt.Errorf("mint certs: %w", err)
	}
	now := time.Now()
	if ca == nil {
		caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return fmt.Errorf("mint certs: %w", err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          serial(),
			Subject:               pkix.Name{CommonName: "Endcap broker CA", Organization: []string{"Endcap"}},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.AddDate(10, 0, 0),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
			BasicConstraintsValid: true,
			IsCA:                  true,
			MaxPathLenZero:        true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
		if err != nil {
			return fmt.Errorf("mint certs: CA: %w", err)
		}
		if ca, err = x509.ParseCertificate(der); err != nil {
			return fmt.Errorf("mint certs: CA: %w", err)
		}
		if err := writeKey(filepath.Join(dir, CAKeyFile), caKey); err != nil {
			return err
		}
		if err := writePEM(filepath.Join(dir, CAFile), "CERTIFICATE", der, 0o644); err != nil {
			return err
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("mint certs: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"Endcap"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(0, 0, 825),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	if ca.NotAfter.Before(tmpl.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("mint certs: server: %w", err)
	}
	if err := writeKey(filepath.Join(dir, ServerKeyFile), key); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, ServerFile), "CERTIFICATE", der, 0o644)
}

// loadCA reads the CA of dir, or returns nils if dir has none.
func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("%s is there but not its key: %w", CAFile, err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("existing CA in %s: %w", dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("existing CA in %s: key is not ECDSA", dir)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, fmt.Errorf("existing CA in %s: %w", dir, err)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("existing %s in %s is not a CA certificate", CAFile, dir)
	}
	return cert, key, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("mint certs: %w", err)
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	data := pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("mint certs: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile's mode is only for new files, and umask applies
		return fmt.Errorf("mint certs: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("mint certs: %w", err)
	}
	return nil
}

// ClientTLSConfig returns the TLS configuration with which an edge or hub
// client verifies the broker: certificates signed by the CA in caFile
// (PEM) only, TLS 1.2 or later. The server name to check comes from the
// address dialled (paho's ssl://host:port does this), so the broker's
// certificate must name that host (MintCerts' hosts).
func ClientTLSConfig(caFile string) (*tls.Config, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("broker CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("broker CA %s: no PEM certificate in it", caFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// serverTLSConfig loads the broker's certificate and key.
func serverTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("broker TLS certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}
