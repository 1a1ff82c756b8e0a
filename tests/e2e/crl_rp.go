// crl_rp.go - a relying party's CRL check with Go's crypto/x509
// (ParseRevocationList, Go 1.19: no reason codes or delta indicator in
// its types, so both extensions are read here).
//
//	crl_rp CA FULL DELTA ATTIME CERT...
//
// Same checks and output as crl_rp.py check: both CRLs signed by CA; FULL
// complete and valid at ATTIME; DELTA's deltaCRLIndicator (2.5.29.27)
// <= FULL's number < DELTA's number (RFC 5280 5.2.4); then per
// certificate "NAME revoked REASON TIME" or "NAME good", the delta's entry
// first (removeFromCRL: not revoked).  Exit 3: FULL expired; 4: DELTA does
// not apply; 1: other errors.
package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
)

var (
	oidDelta  = asn1.ObjectIdentifier{2, 5, 29, 27}
	oidReason = asn1.ObjectIdentifier{2, 5, 29, 21}
)

const removeFromCRL = 8

func der(path string, kind string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		fail(1, "%v", err)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != kind {
			fail(1, "%s: PEM %s, wanted %s", path, blk.Type, kind)
		}
		return blk.Bytes
	}
	return b
}

func fail(code int, f string, a ...interface{}) {
	fmt.Printf(f+"\n", a...)
	os.Exit(code)
}

func loadCert(path string) *x509.Certificate {
	c, err := x509.ParseCertificate(der(path, "CERTIFICATE"))
	if err != nil {
		fail(1, "%s: %v", path, err)
	}
	return c
}

func loadCRL(path string, ca *x509.Certificate) *x509.RevocationList {
	rl, err := x509.ParseRevocationList(der(path, "X509 CRL"))
	if err != nil {
		fail(1, "%s: %v", path, err)
	}
	if err := rl.CheckSignatureFrom(ca); err != nil {
		fail(1, "%s: %v", path, err)
	}
	return rl
}

// deltaBase returns the BaseCRLNumber, or nil for a complete CRL.
func deltaBase(rl *x509.RevocationList) *big.Int {
	for _, e := range rl.Extensions {
		if !e.Id.Equal(oidDelta) {
			continue
		}
		if !e.Critical {
			fail(1, "deltaCRLIndicator not critical (RFC 5280 5.2.4)")
		}
		n := new(big.Int)
		if rest, err := asn1.Unmarshal(e.Value, &n); err != nil ||
			len(rest) != 0 {
			fail(1, "deltaCRLIndicator does not decode")
		}
		return n
	}
	return nil
}

func reason(rc pkix.RevokedCertificate) int {
	for _, e := range rc.Extensions {
		if e.Id.Equal(oidReason) {
			var r asn1.Enumerated
			if rest, err := asn1.Unmarshal(e.Value, &r); err != nil ||
				len(rest) != 0 {
				fail(1, "reasonCode does not decode")
			}
			return int(r)
		}
	}
	return 0
}

func find(rl *x509.RevocationList, s *big.Int) *pkix.RevokedCertificate {
	for i := range rl.RevokedCertificates {
		if rl.RevokedCertificates[i].SerialNumber.Cmp(s) == 0 {
			return &rl.RevokedCertificates[i]
		}
	}
	return nil
}

func main() {
	if len(os.Args) < 6 {
		fail(2, "usage: crl_rp CA FULL DELTA ATTIME CERT...")
	}
	ca := loadCert(os.Args[1])
	full := loadCRL(os.Args[2], ca)
	delta := loadCRL(os.Args[3], ca)
	at, err := strconv.ParseInt(os.Args[4], 10, 64)
	if err != nil {
		fail(2, "ATTIME: %v", err)
	}
	if deltaBase(full) != nil {
		fail(1, "full CRL carries a deltaCRLIndicator")
	}
	base := deltaBase(delta)
	if base == nil {
		fail(1, "delta CRL lacks a deltaCRLIndicator (RFC 5280 5.2.4)")
	}
	if at > full.NextUpdate.Unix() {
		fail(3, "full CRL %v expired at %d (nextUpdate %d)", full.Number,
			at, full.NextUpdate.Unix())
	}
	if base.Cmp(full.Number) > 0 || full.Number.Cmp(delta.Number) >= 0 {
		fail(4, "delta CRL %v (base %v) does not apply to full CRL %v",
			delta.Number, base, full.Number)
	}
	if at > delta.NextUpdate.Unix() {
		fail(4, "delta CRL %v expired at %d", delta.Number, at)
	}
	for _, p := range os.Args[5:] {
		c := loadCert(p)
		if err := c.CheckSignatureFrom(ca); err != nil {
			fail(1, "%s: %v", p, err)
		}
		rc := find(delta, c.SerialNumber)
		if rc == nil {
			rc = find(full, c.SerialNumber)
		}
		name := filepath.Base(p)
		if rc == nil || reason(*rc) == removeFromCRL {
			fmt.Printf("%s good\n", name)
		} else {
			fmt.Printf("%s revoked %d %d\n", name, reason(*rc),
				rc.RevocationTime.Unix())
		}
	}
}
