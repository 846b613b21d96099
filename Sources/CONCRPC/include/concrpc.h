// CONCRPC: the seam between Swift and libtirpc.
//
// Swift cannot call C macros or variadic function pointers. libtirpc's client
// API is largely macros (clnt_call, clnt_destroy, clnt_control, ...)
// and its xdrproc_t is declared variadic. Each function here exists only to
// make one of those callable; it adds no behaviour of its own.
#ifndef CONCRPC_H
#define CONCRPC_H

#include <rpc/rpc.h>
#include <rpc/rpcb_prot.h>
#include <netconfig.h>
#include <sys/time.h>

// A non-variadic XDR routine: the type every rpcgen xdr_<type> has, with the
// C types erased so Swift can hold it. Export your own rpcgen routines as
// constants of this type (see CAuthRelayRPC/xdr_routines.c).
typedef int (*CONCRPC_xdrproc)(void *xdrs, void *object);

// xdr_void, as a CONCRPC_xdrproc.
extern const CONCRPC_xdrproc CONCRPC_xdr_void;
// xdr_wrapstring (a char * with no bound), for rpcbind's universal addresses.
extern const CONCRPC_xdrproc CONCRPC_xdr_wrapstring;
// xdr_bool, for rpcbind's SET / UNSET results.
extern const CONCRPC_xdrproc CONCRPC_xdr_bool;
// xdr_rpcb, rpcbind's GETADDR / SET argument.
extern const CONCRPC_xdrproc CONCRPC_xdr_rpcb;

// clnt_call is a macro over cl_ops->cl_call. A NULL result routine with a
// zero timeout is libtirpc's classic one-way batching.
enum clnt_stat CONCRPC_clnt_call(CLIENT *client, rpcproc_t procedure,
                                 CONCRPC_xdrproc encode, void *argument,
                                 CONCRPC_xdrproc decode, void *result,
                                 struct timeval timeout);

// clnt_destroy is a macro; it also destroys the handle's AUTH.
void CONCRPC_clnt_destroy(CLIENT *client);

// clnt_control is a macro.
bool_t CONCRPC_clnt_control(CLIENT *client, unsigned int request, void *info);

// CLNT_GETERR is a macro; this returns the last call's error details.
void CONCRPC_clnt_geterr(CLIENT *client, struct rpc_err *error);


// xdr_free takes a variadic xdrproc_t.
void CONCRPC_xdr_free(CONCRPC_xdrproc routine, void *object);

// rpc_createerr is a macro over a thread-local; returns its status and errno.
enum clnt_stat CONCRPC_createerr(int *error_number);

// Encodes into / decodes from a caller's buffer with xdrmem (XDR_ENCODE / XDR_DECODE
// and xdr_destroy are macros). Encode returns the bytes written, or -1.
long CONCRPC_xdr_encode(CONCRPC_xdrproc routine, void *object, void *buffer, unsigned int capacity);
bool_t CONCRPC_xdr_decode(CONCRPC_xdrproc routine, void *object, const void *buffer, unsigned int length);

// xdr_sizeof takes a variadic xdrproc_t.
unsigned long CONCRPC_xdr_sizeof(CONCRPC_xdrproc routine, void *object);

// XDR_GETPOS is a macro. Decodes one value from the front of a buffer and
// reports the bytes it used, so a record can be decoded piece by piece while
// it arrives. Returns 0 when the bytes do not (yet) hold a whole value.
bool_t CONCRPC_xdr_decode_prefix(CONCRPC_xdrproc routine, void *object, const void *buffer, unsigned int length,
                                 unsigned int *used);

#endif
