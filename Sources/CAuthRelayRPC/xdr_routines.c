#include "authrelay_routines.h"

const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_event = (CONCRPC_xdrproc)xdr_ar_event;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_ack = (CONCRPC_xdrproc)xdr_ar_ack;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_batch_header = (CONCRPC_xdrproc)xdr_ar_batch_header;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_event_batch = (CONCRPC_xdrproc)xdr_ar_event_batch;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_batch_ack = (CONCRPC_xdrproc)xdr_ar_batch_ack;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_stats = (CONCRPC_xdrproc)xdr_ar_stats;
