package repl

import "flag"

// update rewrites golden files under testdata/ instead of comparing with
// them: go test ./repl/ -update. Every golden test in the package uses it.
var update = flag.Bool("update", false, "rewrite golden files")
