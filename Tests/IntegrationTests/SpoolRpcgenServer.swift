import AuthRelayHarness
import ONCRPC
import SystemSupport
import TestSupport
import Testing

/// A collector built the way users build one: `rpcgen -M` on a copy of
/// rpcgen/authrelay.x (with a program number of its own), rpcgen's own
/// generated main with libtirpc's default buffers (UDP and TCP, registered
/// with rpcbind), and a few lines of C for the procedures. A second program
/// from the same generated dispatchers serves AF_LOCAL (registered with
/// rpcbind too), or UDP with a smaller buffer than the default.
///
/// The procedures write what they were told, one line each, to
/// $AR_TEST_OUTPUT (de-duplicated per agent and boot, as a collector does):
///
///     event  AGENT BOOT SEQ TARGET
///     gap    AGENT BOOT FIRST LAST        (first_seq past the highest + 1)
///     loss   AGENT BOOT FIRST LAST REASON (version 3)
///     status AGENT BOOT SUBMITTED SPOOLED REPLAYED EVICTED CORRUPT QUEUE_DROPPED FALLBACKS BYTES SEGMENTS USABLE
///     boot_end AGENT BOOT clean|unclean LAST REPORTED_BY
///     v1     SEQ TARGET
final class RpcgenCollector {
    enum Kind {
        /// rpcgen's generated main: UDP and TCP, default buffers, registered with rpcbind (portmapper).
        case generatedMain
        /// AF_LOCAL at a path, registered with rpcbind.
        case local(path: String)
        /// UDP with `buffer` bytes instead of the default 8,800, registered with rpcbind.
        case udp(buffer: Int)
    }

    let program: UInt32
    let outputPath: String
    let process: ChildProcess
    private let directory: TemporaryDirectory

    static var available: Bool {
        LocalRPCBind.isRunning && FileSystem.isExecutable("/usr/bin/rpcgen") && FileSystem.isExecutable("/usr/bin/cc")
    }

    /// `program`: a number of its own (`uniqueProgramNumber()`) unless given (a restart at the same number).
    init(_ kind: Kind, in directory: TemporaryDirectory, program: UInt32? = nil) throws {
        self.directory = directory
        self.program = program ?? uniqueProgramNumber()
        outputPath = directory.file("rpcgen-\(String(self.program, radix: 16))-\(UInt32.random(in: 0...UInt32.max)).out")
        let built = try Self.build(program: self.program, kind: kind, in: directory)
        var arguments: [String] = []
        switch kind {
        case .generatedMain: break
        case .local(let path): arguments = ["local", path]
        case .udp(let buffer): arguments = ["udp", String(buffer)]
        }
        process = try ChildProcess(built, arguments, outputIn: directory, tag: "rpcgen-collector",
                                   environment: ["AR_TEST_OUTPUT": outputPath])
        let transports: [RPCTransport]
        switch kind {
        case .generatedMain: transports = [.udp, .tcp]
        case .local: transports = [.local]
        case .udp: transports = [.udp]
        }
        try waitForRegistration(transports)
    }

    deinit { stop() }

    /// SIGTERM (the generated main dies of it) and the registrations removed.
    func stop() {
        process.stop(grace: .seconds(2))
        for version in 1...3 { _ = try? LocalRPCBind.rpcinfo(["-d", String(program), String(version)]) }
    }

    /// The output's lines, split at spaces.
    var lines: [[String]] {
        (FileSystem.readText(outputPath) ?? "").split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
    }

    /// Event sequences of one boot (version 2 and 3), in output order.
    func sequences(boot: String) -> [UInt64] {
        lines.filter { $0.first == "event" && $0.count >= 4 && $0[2] == boot }.compactMap { UInt64($0[3]) }
    }

    /// (first, last, reason) of one boot's loss lines; reason "gap" for a sequence gap.
    func losses(boot: String) -> [(ClosedRange<UInt64>, String)] {
        lines.compactMap { line in
            guard line.count >= 5, line[2] == boot, line[0] == "loss" || line[0] == "gap",
                  let first = UInt64(line[3]), let last = UInt64(line[4]) else { return nil }
            return (first...last, line[0] == "gap" ? "gap" : line[5])
        }
    }

    /// The boot_end lines: (boot, ending, last, reported by).
    var bootEnds: [(boot: String, ending: String, last: UInt64, reportedBy: String)] {
        lines.compactMap { line in
            guard line.count == 6, line[0] == "boot_end", let last = UInt64(line[4]) else { return nil }
            return (line[2], line[3], last, line[5])
        }
    }

    /// The last status line of a boot, as numbers (submitted ... usable).
    func lastStatus(boot: String) -> [UInt64]? {
        lines.last { $0.first == "status" && $0.count == 13 && $0[2] == boot }.map { $0[3...].compactMap { UInt64($0) } }
    }

    var versionOneSequences: [UInt64] {
        lines.filter { $0.first == "v1" }.compactMap { $0.count >= 2 ? UInt64($0[1]) : nil }
    }

    private func waitForRegistration(_ transports: [RPCTransport]) throws {
        let deadline = SystemClock.deadline(after: .seconds(15))
        for transport in transports {
            while (try? RPCBind.lookup(host: "localhost", program: program, version: 2, transport: transport,
                                       timeout: .seconds(1))) == nil {
                if let ended = process.exitStatus {
                    throw HarnessError("rpcgen collector ended (\(ended)) before registering\n\(process.describeOutput())")
                }
                if SystemClock.monotonicNanoseconds() >= deadline {
                    throw HarnessError("rpcgen collector: no \(transport) registration of \(program) in 15 s\n\(process.describeOutput())")
                }
                SystemClock.sleep(.milliseconds(20))
            }
        }
    }

    // MARK: Building

    /// Copies the .x with `program` as its number, runs rpcgen, compiles; the program's path.
    private static func build(program: UInt32, kind: Kind, in directory: TemporaryDirectory) throws -> String {
        let work = directory.file("rpcgen-\(String(program, radix: 16))-\(UInt32.random(in: 0...UInt32.max))")
        try FileSystem.makeDirectories(work)
        let source = try #require(FileSystem.readText(repositoryFile("rpcgen/authrelay.x")), "rpcgen/authrelay.x not found")
        let renumbered = source.replacing(/\}\s*=\s*0x[0-9A-Fa-f]+\s*;\s*$/.anchorsMatchLineEndings(),
                                          with: "} = 0x\(String(program, radix: 16));")
        #expect(renumbered != source, "the program number line of authrelay.x did not match")
        try FileSystem.writeFile(work + "/authrelay.x", Array(renumbered.utf8))
        try FileSystem.writeFile(work + "/procedures.c", Array(procedures.utf8))
        try FileSystem.writeFile(work + "/other_main.c", Array(otherMain.utf8))
        let flags = try run("/usr/bin/pkg-config", ["--cflags", "--libs", "libtirpc"], in: work)
            .split(whereSeparator: \.isWhitespace).map(String.init)
        let output = work + "/collector"
        switch kind {
        case .generatedMain:
            // The whole set, main included: authrelay.h, _svc.c (with main), _clnt.c, _xdr.c.
            _ = try run("/usr/bin/rpcgen", ["-M", "authrelay.x"], in: work)
            _ = try run("/usr/bin/cc", ["-o", output, "authrelay_svc.c", "authrelay_xdr.c", "procedures.c", "-w"] + flags, in: work)
        case .local, .udp:
            // The same generated dispatchers without their main (-m), and a main that serves AF_LOCAL or a small UDP buffer.
            _ = try run("/usr/bin/rpcgen", ["-M", "-h", "-o", "authrelay.h", "authrelay.x"], in: work)
            _ = try run("/usr/bin/rpcgen", ["-M", "-c", "-o", "authrelay_xdr.c", "authrelay.x"], in: work)
            _ = try run("/usr/bin/rpcgen", ["-M", "-m", "-o", "authrelay_dispatch.c", "authrelay.x"], in: work)
            _ = try run("/usr/bin/cc", ["-o", output, "authrelay_dispatch.c", "authrelay_xdr.c", "procedures.c", "other_main.c", "-w"]
                        + flags, in: work)
        }
        return output
    }

    private static func run(_ program: String, _ arguments: [String], in directory: String) throws -> String {
        let (status, output) = try ChildProcess.run("/bin/sh", ["-c", "cd '\(directory)' && exec \"$0\" \"$@\"", program] + arguments,
                                                    timeout: .seconds(60))
        if status != 0 { throw HarnessError("\(program) \(arguments.joined(separator: " ")): status \(status)\n\(output)") }
        return output
    }

    /// A file of this repository, found from this source file's path.
    static func repositoryFile(_ relative: String) -> String {
        var directory = FileSystem.directoryName(of: #filePath)
        while directory != "/" && !FileSystem.exists(directory + "/Package.swift") { directory = FileSystem.directoryName(of: directory) }
        return directory + "/" + relative
    }

    // MARK: The C

    static let procedures = #"""
    #define _DEFAULT_SOURCE
    #include <inttypes.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include "authrelay.h"

    static FILE *out;
    static uint64_t n_events, n_batches, n_legacy;
    static struct { char agent[AR_ID_MAX + 1], boot[AR_ID_MAX + 1]; uint64_t highest; } pairs[256];
    static int n_pairs;

    static FILE *output(void) {
        if (!out) {
            const char *path = getenv("AR_TEST_OUTPUT");
            out = path ? fopen(path, "a") : NULL;
            if (!out) out = stderr;
        }
        return out;
    }

    static uint64_t *highest_of(const char *agent, const char *boot) {
        for (int i = 0; i < n_pairs; i++)
            if (!strcmp(pairs[i].agent, agent) && !strcmp(pairs[i].boot, boot)) return &pairs[i].highest;
        if (n_pairs == 256) n_pairs = 0;
        snprintf(pairs[n_pairs].agent, sizeof pairs[n_pairs].agent, "%s", agent);
        snprintf(pairs[n_pairs].boot, sizeof pairs[n_pairs].boot, "%s", boot);
        pairs[n_pairs].highest = 0;
        return &pairs[n_pairs++].highest;
    }

    /* Events above the highest; a gap when the batch starts past highest + 1. */
    static void take(const char *agent, const char *boot, uint64_t first, ar_event *events, u_int n, uint64_t *highest) {
        if (first > *highest + 1) fprintf(output(), "gap %s %s %" PRIu64 " %" PRIu64 "\n", agent, boot, *highest + 1, first - 1);
        for (u_int i = 0; i < n; i++)
            if (events[i].seq > *highest)
                fprintf(output(), "event %s %s %" PRIu64 " %s\n", agent, boot, (uint64_t)events[i].seq, events[i].target_path);
    }

    /* The acknowledgement of a batch of n events that accounts through last. */
    static bool_t answer(ar_batch_ack *result, u_int n, uint64_t *highest, uint64_t last) {
        fflush(output());
        if (last > *highest) *highest = last;
        result->status = AR_STATUS_OK;
        result->accepted = n;
        result->duplicates = 0;
        result->highest_seq = *highest;
        return TRUE;
    }

    bool_t ar1_null_1_svc(void *argp, void *result, struct svc_req *rqstp) { return TRUE; }

    bool_t ar1_report_event_1_svc(ar_event *argp, ar_ack *result, struct svc_req *rqstp) {
        n_legacy++;
        n_events++;
        fprintf(output(), "v1 %" PRIu64 " %s\n", (uint64_t)argp->seq, argp->target_path);
        fflush(output());
        result->status = AR_STATUS_OK;
        result->seq = argp->seq;
        return TRUE;
    }

    int authrelay_prog_1_freeresult(SVCXPRT *transp, xdrproc_t xdr_result, caddr_t result) {
        xdr_free(xdr_result, result);
        return 1;
    }

    bool_t ar2_null_2_svc(void *argp, void *result, struct svc_req *rqstp) { return TRUE; }

    bool_t ar2_report_batch_2_svc(ar_event_batch *argp, ar_batch_ack *result, struct svc_req *rqstp) {
        u_int n = argp->events.events_len;
        uint64_t first = argp->header.first_seq;
        uint64_t *highest = highest_of(argp->header.agent_id, argp->header.boot_id);
        uint64_t last = n > 0 ? argp->events.events_val[n - 1].seq : first - 1;
        n_batches++;
        n_events += n;
        take(argp->header.agent_id, argp->header.boot_id, first, argp->events.events_val, n, highest);
        return answer(result, n, highest, last);
    }

    bool_t ar2_get_stats_2_svc(void *argp, ar_stats *result, struct svc_req *rqstp) {
        memset(result, 0, sizeof *result);
        result->batches = n_batches;
        result->events = n_events;
        result->legacy_events = n_legacy;
        return TRUE;
    }

    int authrelay_prog_2_freeresult(SVCXPRT *transp, xdrproc_t xdr_result, caddr_t result) {
        xdr_free(xdr_result, result);
        return 1;
    }

    bool_t ar3_null_3_svc(void *argp, void *result, struct svc_req *rqstp) { return TRUE; }

    bool_t ar3_report_batch_3_svc(ar3_event_batch *argp, ar_batch_ack *result, struct svc_req *rqstp) {
        ar3_batch_header *h = &argp->header;
        u_int n = argp->events.events_len, losses = h->losses.losses_len;
        uint64_t *highest = highest_of(h->agent_id, h->boot_id);
        uint64_t last = h->first_seq - 1;
        if (n > 0 && argp->events.events_val[n - 1].seq > last) last = argp->events.events_val[n - 1].seq;
        if (losses > 0 && h->losses.losses_val[losses - 1].last_seq > last) last = h->losses.losses_val[losses - 1].last_seq;
        n_batches++;
        n_events += n;
        take(h->agent_id, h->boot_id, h->first_seq, argp->events.events_val, n, highest);
        for (u_int i = 0; i < losses; i++) {
            ar_loss_range *loss = &h->losses.losses_val[i];
            if (loss->last_seq <= *highest) continue;
            const char *reason = loss->reason == AR_LOSS_QUEUE_FULL ? "queue_full" : loss->reason == AR_LOSS_SPOOL_EVICTED ? "spool_evicted"
                : loss->reason == AR_LOSS_SPOOL_CORRUPT ? "spool_corrupt" : loss->reason == AR_LOSS_REFUSED ? "refused" : "other";
            fprintf(output(), "loss %s %s %" PRIu64 " %" PRIu64 " %s\n", h->agent_id, h->boot_id,
                    loss->first_seq > *highest ? (uint64_t)loss->first_seq : *highest + 1, (uint64_t)loss->last_seq, reason);
        }
        ar_agent_status *s = &h->status;
        fprintf(output(), "status %s %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %u\n",
                h->agent_id, h->boot_id, (uint64_t)s->submitted, (uint64_t)s->spooled, (uint64_t)s->replayed, (uint64_t)s->evicted,
                (uint64_t)s->corrupt, (uint64_t)s->queue_dropped, (uint64_t)s->memory_fallbacks, (uint64_t)s->spool_bytes,
                s->spool_segments, s->spool_usable);
        return answer(result, n, highest, last);
    }

    bool_t ar3_get_stats_3_svc(void *argp, ar3_stats *result, struct svc_req *rqstp) {
        memset(result, 0, sizeof *result);
        return ar2_get_stats_2_svc(argp, &result->totals, rqstp);
    }

    bool_t ar3_report_boot_end_3_svc(ar_boot_end *argp, ar_status *result, struct svc_req *rqstp) {
        fprintf(output(), "boot_end %s %s %s %" PRIu64 " %s\n", argp->agent_id, argp->boot_id,
                argp->ending == AR_BOOT_CLEAN ? "clean" : "unclean", (uint64_t)argp->last_seq, argp->reported_by);
        fflush(output());
        *result = AR_STATUS_OK;
        return TRUE;
    }

    int authrelay_prog_3_freeresult(SVCXPRT *transp, xdrproc_t xdr_result, caddr_t result) {
        xdr_free(xdr_result, result);
        return 1;
    }
    """#

    static let otherMain = #"""
    #define _DEFAULT_SOURCE
    #include <netconfig.h>
    #include <rpc/rpc.h>
    #include <rpc/pmap_clnt.h>
    #include <stdio.h>
    #include <stdlib.h>
    #include <string.h>
    #include <unistd.h>
    #include "authrelay.h"

    void authrelay_prog_1(struct svc_req *rqstp, SVCXPRT *transp);
    void authrelay_prog_2(struct svc_req *rqstp, SVCXPRT *transp);
    void authrelay_prog_3(struct svc_req *rqstp, SVCXPRT *transp);
    static void (*dispatch[3])(struct svc_req *, SVCXPRT *) = { authrelay_prog_1, authrelay_prog_2, authrelay_prog_3 };

    /* other_main local PATH | other_main udp BUFFER */
    int main(int argc, char **argv) {
        if (argc != 3) return 2;
        if (!strcmp(argv[1], "local")) {
            unlink(argv[2]);
            SVCXPRT *xprt = svcunix_create(RPC_ANYSOCK, 0, 0, argv[2]);  /* default buffers */
            struct netconfig *local = getnetconfigent("local");
            if (!xprt || !local) { fprintf(stderr, "cannot serve %s\n", argv[2]); return 1; }
            for (int v = 1; v <= 3; v++) {
                rpcb_unset(AUTHRELAY_PROG, v, local);
                if (!svc_reg(xprt, AUTHRELAY_PROG, v, dispatch[v - 1], local)) { fprintf(stderr, "svc_reg %d failed\n", v); return 1; }
            }
        } else {
            int size = atoi(argv[2]);
            SVCXPRT *xprt = svcudp_bufcreate(RPC_ANYSOCK, size, size);
            if (!xprt) { fprintf(stderr, "cannot serve udp\n"); return 1; }
            for (int v = 1; v <= 3; v++) {
                pmap_unset(AUTHRELAY_PROG, v);
                if (!svc_register(xprt, AUTHRELAY_PROG, v, dispatch[v - 1], IPPROTO_UDP)) { fprintf(stderr, "register %d failed\n", v); return 1; }
            }
        }
        fprintf(stderr, "ready\n");
        svc_run();
        return 1;
    }
    """#
}
