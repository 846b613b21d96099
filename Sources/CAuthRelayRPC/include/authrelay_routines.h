// The rpcgen XDR routines of authrelay.x as non-variadic CONCRPC_xdrproc
// constants, the form ONCRPC's XDRRoutine takes. A user with their own .x
// writes the same few lines for their types.
#ifndef AUTHRELAY_ROUTINES_H
#define AUTHRELAY_ROUTINES_H

#include "concrpc.h"
#include "authrelay.h"

extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_event;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_ack;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_batch_header;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_event_batch;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_batch_ack;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_stats;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_loss_range;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_agent_status;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar3_batch_header;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar3_event_batch;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_boot_end;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_status;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_agent_view;
extern const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar3_stats;

#endif
