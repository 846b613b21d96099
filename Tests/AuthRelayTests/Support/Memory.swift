import SystemSupport

/// Resident set size of this process in bytes, from /proc/self/status (VmRSS, in KiB).
func residentBytes() -> Int {
    (Processes.statusKiB(Processes.currentID, "VmRSS") ?? 0) * 1024
}
