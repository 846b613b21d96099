#include "authrelay_routines.h"

const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_event = (CONCRPC_xdrproc)xdr_ar_event;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_ack = (CONCRPC_xdrproc)xdr_ar_ack;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_batch_header = (CONCRPC_xdrproc)xdr_ar_batch_header;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_event_batch = (CONCRPC_xdrproc)xdr_ar_event_batch;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_batch_ack = (CONCRPC_xdrproc)xdr_ar_batch_ack;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_stats = (CONCRPC_xdrproc)xdr_ar_stats;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_loss_range = (CONCRPC_xdrproc)xdr_ar_loss_range;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_agent_status = (CONCRPC_xdrproc)xdr_ar_agent_status;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar3_batch_header = (CONCRPC_xdrproc)xdr_ar3_batch_header;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar3_event_batch = (CONCRPC_xdrproc)xdr_ar3_event_batch;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_boot_end = (CONCRPC_xdrproc)xdr_ar_boot_end;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_status = (CONCRPC_xdrproc)xdr_ar_status;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar_agent_view = (CONCRPC_xdrproc)xdr_ar_agent_view;
const CONCRPC_xdrproc CAuthRelayRPC_xdr_ar3_stats = (CONCRPC_xdrproc)xdr_ar3_stats;
