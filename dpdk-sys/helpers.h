/* Tiny C helpers for what bindgen cannot reach: DPDK's per-thread variables. */
#ifndef ZCAP_DPDK_SYS_HELPERS_H
#define ZCAP_DPDK_SYS_HELPERS_H

/* The calling thread's rte_errno (a thread-local in DPDK). */
int zcap_rte_errno(void);

#endif
