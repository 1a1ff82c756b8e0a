/*
 * adm_check.c - `mica-admin check`: proves the CA is consistent.
 */
#include "admin/adm_local.h"

void
adm_cmd_check(struct adm_req *r)
{
	adm_fail(r, "check: not implemented yet");
}
