/*
 * adm_reptxn.c - the store write of replica add: the three certificates
 * it issued, an audit record each.  Used offline by mica-admin and by
 * micad's "replica record" (admin socket); depends on the store only.
 */
#include <stdio.h>

#include "admin/admin.h"
#include "ca/ca.h"
#include "store/store.h"

enum store_rc
adm_replica_txn(struct store_txn *t, void *arg)
{
	struct adm_replica_rec *r = arg;
	char hex[SERIAL_HEX_LEN], det[160];
	enum store_rc rc;
	int i;

	for (i = 0; i < 3; i++) {
		if ((rc = store_cert_add(t, &r->rec[i])) != STORE_OK)
			return rc;
		serial_hex(hex, r->rec[i].serial);
		snprintf(det, sizeof(det), "replica %s: %s", r->name,
		    i == 0 ? "OCSP signer" : i == 1 ? "TLS server" :
		    "replication client");
		if ((rc = store_audit_append(t, r->actor != NULL ? r->actor :
		    "mica-admin", "replica.add", hex, det, NULL)) != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

