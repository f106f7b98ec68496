package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/rshell/rshell/transport"
	"github.com/spf13/cobra"
)

// clientTLSFlags applies --tls-ca and --tls-client-cert/--tls-client-key.
func clientTLSFlags(cmd *cobra.Command, t *transport.TrustOptions) error {
	fl := cmd.Flags()
	ca, _ := fl.GetString("tls-ca")
	certFile, _ := fl.GetString("tls-client-cert")
	keyFile, _ := fl.GetString("tls-client-key")
	if ca != "" {
		pemBytes, err := os.ReadFile(ca)
		if err != nil {
			return fmt.Errorf("read --tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return fmt.Errorf("--tls-ca %s holds no PEM certificate", ca)
		}
		t.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return errors.New("--tls-client-cert and --tls-client-key go together")
	}
	if certFile != "" {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("load --tls-client-cert/--tls-client-key: %w", err)
		}
		t.ClientCert = &c
	}
	return nil
}
