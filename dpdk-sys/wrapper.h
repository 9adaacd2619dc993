/* The DPDK surface zcap binds to. bindgen reads this file; build.rs compiles
 * the wrappers it generates for DPDK's static inline functions. */
#include <rte_config.h>
#include <rte_version.h>
#include <rte_common.h>
#include <rte_errno.h>
#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_pause.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_bpf.h>
#include <rte_telemetry.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_malloc.h>

/* libpcap's types: engine/src/dpdk/libpcap.rs loads libpcap itself (dlopen), and
 * rte_bpf_convert takes the classic BPF its pcap_compile makes. */
#include <pcap/pcap.h>

#include "helpers.h"
