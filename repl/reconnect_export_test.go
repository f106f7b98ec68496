package repl

// PendingReportForTest exposes pendingReport to the external tests.
var PendingReportForTest = pendingReport
