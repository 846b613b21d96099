// libtirpc's public headers, found through pkg-config (libtirpc).
// pkg-config puts /usr/include/tirpc first, so <rpc/rpc.h> is libtirpc's and
// not glibc's leftover <rpc/netdb.h>-only directory.
#include <rpc/rpc.h>
#include <rpc/rpcb_clnt.h>
#include <rpc/rpcb_prot.h>
#include <rpc/svc_dg.h>
#include <netconfig.h>
