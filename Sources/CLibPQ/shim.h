// libpq, PostgreSQL's own C client, found through pkg-config (libpq:
// /usr/include/postgresql on Debian). Only AuthRelayPostgres imports it.
#include <libpq-fe.h>
