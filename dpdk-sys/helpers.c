#include <rte_errno.h>
#include <rte_lcore.h>
#include "helpers.h"

int zcap_rte_errno(void) { return rte_errno; }

unsigned zcap_lcore_id(void) { return rte_lcore_id(); }
