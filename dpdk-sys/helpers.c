#include <rte_errno.h>
#include "helpers.h"

int zcap_rte_errno(void) { return rte_errno; }

