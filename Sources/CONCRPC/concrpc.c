#include "concrpc.h"

const CONCRPC_xdrproc CONCRPC_xdr_void = (CONCRPC_xdrproc)xdr_void;
const CONCRPC_xdrproc CONCRPC_xdr_wrapstring = (CONCRPC_xdrproc)xdr_wrapstring;
const CONCRPC_xdrproc CONCRPC_xdr_bool = (CONCRPC_xdrproc)xdr_bool;
const CONCRPC_xdrproc CONCRPC_xdr_rpcb = (CONCRPC_xdrproc)xdr_rpcb;

enum clnt_stat CONCRPC_clnt_call(CLIENT *client, rpcproc_t procedure,
                                 CONCRPC_xdrproc encode, void *argument,
                                 CONCRPC_xdrproc decode, void *result,
                                 struct timeval timeout) {
    return clnt_call(client, procedure, (xdrproc_t)encode, argument,
                     (xdrproc_t)decode, result, timeout);
}

void CONCRPC_clnt_destroy(CLIENT *client) {
    if (client->cl_auth != NULL) {
        auth_destroy(client->cl_auth);
        client->cl_auth = NULL;
    }
    clnt_destroy(client);
}

bool_t CONCRPC_clnt_control(CLIENT *client, unsigned int request, void *info) {
    return clnt_control(client, request, info);
}

void CONCRPC_clnt_geterr(CLIENT *client, struct rpc_err *error) {
    clnt_geterr(client, error);
}

void CONCRPC_xdr_free(CONCRPC_xdrproc routine, void *object) {
    xdr_free((xdrproc_t)routine, object);
}

enum clnt_stat CONCRPC_createerr(int *error_number) {
    if (error_number != NULL) {
        *error_number = rpc_createerr.cf_error.re_errno;
    }
    return rpc_createerr.cf_stat;
}

long CONCRPC_xdr_encode(CONCRPC_xdrproc routine, void *object, void *buffer, unsigned int capacity) {
    XDR xdrs;
    xdrmem_create(&xdrs, buffer, capacity, XDR_ENCODE);
    long written = routine(&xdrs, object) ? (long)xdr_getpos(&xdrs) : -1;
    xdr_destroy(&xdrs);
    return written;
}

bool_t CONCRPC_xdr_decode(CONCRPC_xdrproc routine, void *object, const void *buffer, unsigned int length) {
    unsigned int used;
    return CONCRPC_xdr_decode_prefix(routine, object, buffer, length, &used);
}

unsigned long CONCRPC_xdr_sizeof(CONCRPC_xdrproc routine, void *object) {
    return xdr_sizeof((xdrproc_t)routine, object);
}

bool_t CONCRPC_xdr_decode_prefix(CONCRPC_xdrproc routine, void *object, const void *buffer, unsigned int length,
                                 unsigned int *used) {
    XDR xdrs;
    xdrmem_create(&xdrs, (char *)buffer, length, XDR_DECODE);
    bool_t ok = routine(&xdrs, object);
    *used = ok ? xdr_getpos(&xdrs) : 0;
    xdr_destroy(&xdrs);
    return ok;
}
